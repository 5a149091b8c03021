import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A 2 MiB tmpfs for a capture's output (a disk that fills up mid-stream), mounted at
 * `<tmpdir>/<prefix>-<pid>`; or why there cannot be one (not root, no mount permission).
 */
export function mountSmallTmpfs(prefix: string): { dir: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'needs root to mount a small tmpfs';
  const dir = join(tmpdir(), `${prefix}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()})`;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
