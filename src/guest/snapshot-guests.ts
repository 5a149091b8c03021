/**
 * Guests that keep RAM changing or filled while running, for background-snapshot tests and benches:
 * the counting guest (assets/guests/counter.asm) and the fill guest (assets/guests/fill.asm).
 */
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeQemuOptionValue, startQemu, type LaunchedQemu, type LaunchOptions } from './launch';

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

const FILL_IMAGE = join(__dirname, '..', '..', '..', 'assets', 'guests', 'fill.bin');

/**
 * The bench's fill guest (assets/guests/fill.asm) filling `fillBytes` above 2 MiB with its page mix,
 * then halting; -action panic=none keeps it "running" (so a snapshot applies). -S: `cont` it and wait
 * for GUEST_PANICKED (sent with action "run") before capturing.
 */
export function launchFillGuest(fillBytes: number, options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ memory: '256M', startPaused: true, ...options, arch: 'x86_64' }, (dir) => {
    const image = join(dir, 'fill.img');
    const sector = Buffer.from(readFileSync(FILL_IMAGE));
    sector.writeUInt32LE(0x200000 + fillBytes, 0x1f8);
    writeFileSync(image, sector);
    truncateSync(image, 1024 * 1024);
    return ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`, '-device', 'pvpanic', '-action', 'panic=none'];
  });
}
