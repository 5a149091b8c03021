/** Guests for the background-snapshot tests: the counting guest (assets/guests/counter.asm). */
import { copyFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { escapeQemuOptionValue, startQemu, type LaunchedQemu, type LaunchOptions } from '../../src/guest';

const COUNTER_IMAGE = join(__dirname, '..', '..', '..', 'assets', 'guests', 'counter.bin');
export const COUNTER_PAGES = { a: 0x00100000n, b: 0x02000000n, c: 0x03f00000n };
export const COUNTER_MARKER = 0xc0de0c0dn;

/** The counting guest, running (64 MiB, TCG). */
export function launchCounterGuest(options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ memory: '64M', ...options, arch: 'x86_64' }, (dir) => {
    const image = join(dir, 'counter.img');
    copyFileSync(COUNTER_IMAGE, image);
    truncateSync(image, 1024 * 1024);
    return ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`];
  });
}
