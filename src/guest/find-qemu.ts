import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type GuestArch = 'x86_64' | 'aarch64';

/** Absolute path of `qemu-system-<arch>` on PATH, or undefined when it is not installed. */
export function findQemu(arch: GuestArch | string): string | undefined {
  const name = `qemu-system-${arch}`;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
