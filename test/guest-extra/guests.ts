/**
 * Launchers for the extra known-answer guests the capture tests use (the boot-sector guest lives in
 * src/guest because `vmpm demo` needs it too). Each copies its committed asset into QEMU's private
 * temp dir, so tests never modify anything in the checkout.
 */
import { copyFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeQemuOptionValue, startQemu, type LaunchedQemu, type LaunchOptions } from '../../src/guest/launch';
import { AARCH64_LOAD_ADDR } from './aarch64-guest';

/** assets/guests, from dist/test/guest-extra. */
export const GUEST_ASSETS = join(__dirname, '..', '..', '..', 'assets', 'guests');
const DISK_BYTES = 1024 * 1024;

function diskFrom(dir: string, asset: string, name: string): string {
  const image = join(dir, name);
  copyFileSync(join(GUEST_ASSETS, asset), image);
  truncateSync(image, DISK_BYTES);
  return image;
}

/** lm.asm: long mode, paging on, higher-half alias; panics through ISA pvpanic (see LONG_MODE_ANSWERS). */
export function launchLongModeGuest(options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'x86_64' }, (dir) => {
    const image = diskFrom(dir, 'lm.bin', 'lm.img');
    return ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`, '-device', 'pvpanic'];
  });
}

/** a64.bin on `-M virt -cpu cortex-a57`, loaded into RAM with vCPU 0's PC pointing at it. */
export function launchAarch64Guest(options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'aarch64' }, (dir) => {
    const blob = join(dir, 'a64.bin');
    copyFileSync(join(GUEST_ASSETS, 'a64.bin'), blob);
    return [
      '-M', 'virt', '-cpu', 'cortex-a57',
      '-device', `loader,file=${escapeQemuOptionValue(blob)},addr=0x${AARCH64_LOAD_ADDR.toString(16)},cpu-num=0`,
    ];
  });
}

/**
 * blkread.asm reading from a second IDE disk behind blkdebug (every read fails with EIO) with
 * rerror=stop: a real BLOCK_IO_ERROR, then the io-error run state. Start paused and `cont` after
 * connecting, or the event is emitted before anyone listens.
 */
export function launchBlockErrorGuest(options: Partial<LaunchOptions> = {}): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'x86_64' }, (dir) => {
    const boot = diskFrom(dir, 'blkread.bin', 'blkread.img');
    const data = join(dir, 'data.img');
    writeFileSync(data, Buffer.alloc(DISK_BYTES));
    const cfg = join(GUEST_ASSETS, 'blkdebug-eio.cfg');
    return [
      '-drive', `file=${escapeQemuOptionValue(boot)},format=raw,if=ide,index=0`,
      '-drive', `file=blkdebug:${escapeQemuOptionValue(cfg)}:${escapeQemuOptionValue(data)},format=raw,if=ide,index=2,rerror=stop,werror=stop`,
      '-device', 'pvpanic',
    ];
  });
}

/**
 * vmcoreinfo.asm: publishes a VMCOREINFO ELF note through fw_cfg (as Linux does for -device vmcoreinfo),
 * then panics. `withDevice: false` leaves the device out, so QEMU has no note to add.
 */
export function launchVmcoreinfoGuest(options: Partial<LaunchOptions> & { withDevice?: boolean } = {}): Promise<LaunchedQemu> {
  const { withDevice = true, ...launch } = options;
  return startQemu({ ...launch, arch: 'x86_64' }, (dir) => {
    const image = diskFrom(dir, 'vmcoreinfo.bin', 'vmci.img');
    const args = ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`, '-device', 'pvpanic'];
    if (withDevice) args.push('-device', 'vmcoreinfo');
    return args;
  });
}

/** The note text vmcoreinfo.asm publishes. */
export const VMCOREINFO_TEXT = 'OSRELEASE=vmpm-known-answer\nPAGESIZE=4096\nVMPM_MARKER=FORENSIC-VMCI-1\n';
