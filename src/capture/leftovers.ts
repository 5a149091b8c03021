/**
 * What a vmpm killed with SIGKILL (or a power cut) leaves behind: its temporary bundle
 * `.<name>.partial-<random>` beside the output, and its FIFO directory `vmpm-fifo-*` in the temp
 * directory. Nothing could clean them up, so the next run looks for them and says so. A temporary
 * bundle is not deleted (another vmpm may be writing it right now).
 *
 * A FIFO directory whose vmpm is gone (no process with the pid in its name, or one started at another
 * time than the one recorded there) is released and removed: if vmpm was killed after asking for the
 * dump but before the writer opened the FIFO, that writer is blocked in open() for good, with no reader
 * ever to come: libvirtd for `virsh dump --memory-only` (holding the domain's job: `virsh domstate`,
 * `virsh create`... of that domain wait), QEMU for `pmemsave` / `dump-guest-memory` (its main loop,
 * QMP included). Opening and closing each FIFO lets that open() return; the writer's first write then
 * fails with EPIPE and its dump job ends with an error. A dead vmpm's FIFOs hold nothing worth keeping.
 * The guest such a run stopped may still be stopped; `vmpm state` reports it (exit 11).
 */
import { readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processRuns } from './claim';
import { releaseFifo } from './fifo';

export interface Leftover {
  path: string;
  kind: 'partial-bundle' | 'fifo-dir';
  bytes: number;
  modified: Date;
  /** A FIFO directory of a vmpm that is gone: its FIFOs were released (see above) and it was removed. */
  released?: boolean;
}

/**
 * FIFO directories in `temp` whose vmpm is gone, each released and removed (see above); directories of
 * a vmpm that still runs are left alone. Cheap (one readdir): run at the start of every command that
 * talks to a guest, before connecting (a blocked QEMU would not answer).
 */
export function releaseFifoLeftovers(temp: string = tmpdir()): Leftover[] {
  let names: string[];
  try {
    names = readdirSync(temp);
  } catch {
    return [];
  }
  const found: Leftover[] = [];
  for (const n of names) {
    const owner = /^vmpm-fifo-(\d+)-(?:s(\d+)-)?/.exec(n);
    if (!owner || processRuns(Number(owner[1]), owner[2])) continue;
    const path = join(temp, n);
    let modified: Date;
    try {
      const st = statSync(path);
      if (!st.isDirectory()) continue;
      modified = st.mtime;
    } catch {
      continue; // gone meanwhile (another vmpm released it)
    }
    let released = true;
    try {
      for (const f of readdirSync(path)) releaseFifo(join(path, f));
      rmSync(path, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another vmpm released it meanwhile
      released = false; // another user's (a 0700 directory): reported, left to its owner
    }
    found.push({ path, kind: 'fifo-dir', bytes: 0, modified, released });
  }
  return found;
}

/** Leftovers in `dir` (temporary bundles) and in the temp directory (FIFO directories, released and removed: releaseFifoLeftovers), oldest first. */
export function findLeftovers(dir: string, temp: string = tmpdir()): Leftover[] {
  const found: Leftover[] = [];
  const scan = (where: string, match: (n: string) => boolean, kind: Leftover['kind']): void => {
    let names: string[];
    try {
      names = readdirSync(where);
    } catch {
      return;
    }
    for (const n of names.filter(match)) {
      try {
        const st = statSync(join(where, n));
        found.push({ path: join(where, n), kind, bytes: st.isFile() ? st.size : 0, modified: st.mtime });
      } catch {
        // gone meanwhile: it was not a leftover
      }
    }
  };
  scan(dir, (n) => /^\..+\.partial-[0-9a-f]{12}$/.test(n), 'partial-bundle');
  found.push(...releaseFifoLeftovers(temp));
  // A temporary bundle some process still has open is a capture in progress, not a leftover.
  const open = openFiles();
  return found
    .filter((l) => l.kind !== 'partial-bundle' || (open !== undefined && !open.has(l.path)))
    .sort((a, b) => a.modified.getTime() - b.modified.getTime());
}

/** One warning line per leftover. */
export function describeLeftover(l: Leftover): string {
  if (l.kind === 'fifo-dir') {
    const done = l.released
      ? 'released and removed it (a libvirtd or QEMU still waiting to open its FIFO is let go; its dump fails)'
      : 'could not release or remove it (another user\'s?): as its owner, read each FIFO in it once (`timeout 1 cat FIFO > /dev/null`) and delete it';
    return `found a memory FIFO directory left by an earlier vmpm that is gone (killed?): ${l.path} (modified ${l.modified.toISOString()}); ${done}; check the guest with \`vmpm state\``;
  }
  return `found an unfinished bundle (${l.bytes} bytes) left by an earlier vmpm that did not finish (killed?), or in use by one running now: ${l.path} (modified ${l.modified.toISOString()}); delete it once no vmpm runs, and check the guest with \`vmpm state\``;
}

/** Every file any process has open (Linux /proc), or undefined where that cannot be known. */
function openFiles(): Set<string> | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  const open = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or another user's process
    }
    for (const fd of fds) {
      try {
        open.add(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        // closed meanwhile
      }
    }
  }
  return open;
}
