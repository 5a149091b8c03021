import { copyFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { escapeQemuOptionValue, startQemu, type LaunchedQemu, type LaunchOptions } from './launch';

/** The committed nasm output of assets/guests/boot.asm (dist/src/guest -> repo root). */
export const BOOT_SECTOR_IMAGE = join(__dirname, '..', '..', '..', 'assets', 'guests', 'boot.bin');

/** IDE disks need a plausible size; 1 MiB is what the reference measurements used. */
const DISK_BYTES = 1024 * 1024;

/**
 * Starts the x86 known-answer boot sector (see BOOT_SECTOR_ANSWERS) with an ISA pvpanic device, so
 * the guest panics ~0.1-0.3 s after it runs. Use `startPaused: true` to connect before it panics.
 */
export function launchBootSectorGuest(options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'x86_64' }, (dir) => {
    // A private, padded copy: QEMU may write to the disk, the committed asset stays untouched.
    const image = join(dir, 'boot.img');
    copyFileSync(BOOT_SECTOR_IMAGE, image);
    truncateSync(image, DISK_BYTES);
    return ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`, '-device', 'pvpanic'];
  });
}
