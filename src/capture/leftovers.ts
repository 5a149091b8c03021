/**
 * What a vmpm killed with SIGKILL (or a power cut) leaves behind: its temporary bundle
 * `.<name>.partial-<random>` beside the output, and its FIFO directory `vmpm-fifo-*` in the temp
 * directory. Nothing could clean them up, so the next run looks for them and says so (it does not
 * delete them: another vmpm may be writing them right now). The guest such a run stopped may still
 * be stopped; `vmpm state` reports it (exit 11).
 */
import { readdirSync, statSync } from 'node:fs';
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
  scan(temp, (n) => n.startsWith('vmpm-fifo-'), 'fifo-dir');
  return found.sort((a, b) => a.modified.getTime() - b.modified.getTime());
}

/** One warning line per leftover. */
export function describeLeftover(l: Leftover): string {
  const what = l.kind === 'partial-bundle' ? `an unfinished bundle (${l.bytes} bytes)` : 'a memory FIFO directory';
  return `found ${what} left by an earlier vmpm that did not finish (killed?), or in use by one running now: ${l.path} (modified ${l.modified.toISOString()}); delete it once no vmpm runs, and check the guest with \`vmpm state\``;
}
