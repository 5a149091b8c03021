/**
 * What a vmpm killed with SIGKILL (or a power cut) leaves behind: its temporary bundle
 * `.<name>.partial-<random>` beside the output, and its FIFO directory `vmpm-fifo-*` in the temp
 * directory. Nothing could clean them up, so the next run looks for them and says so (it does not
 * delete them: another vmpm may be writing them right now). The guest such a run stopped may still
 * be stopped; `vmpm state` reports it (exit 11).
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Leftover {
  path: string;
  kind: 'partial-bundle' | 'fifo-dir';
  bytes: number;
  modified: Date;
}

/** Leftovers in `dir` (temporary bundles) and in the temp directory (FIFO directories), oldest first. */
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
  scan(temp, (n) => /^vmpm-fifo-\d+-/.test(n) && !alive(Number(/^vmpm-fifo-(\d+)-/.exec(n)![1])), 'fifo-dir');
  // A temporary bundle some process still has open is a capture in progress, not a leftover.
  const open = openFiles();
  return found
    .filter((l) => l.kind !== 'partial-bundle' || (open !== undefined && !open.has(l.path)))
    .sort((a, b) => a.modified.getTime() - b.modified.getTime());
}

/** One warning line per leftover. */
export function describeLeftover(l: Leftover): string {
  const what = l.kind === 'partial-bundle' ? `an unfinished bundle (${l.bytes} bytes)` : 'a memory FIFO directory';
  return `found ${what} left by an earlier vmpm that did not finish (killed?), or in use by one running now: ${l.path} (modified ${l.modified.toISOString()}); delete it once no vmpm runs, and check the guest with \`vmpm state\``;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
