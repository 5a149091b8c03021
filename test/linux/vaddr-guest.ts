/**
 * Boots the real Debian Linux test guest (./build-guest.ts), lets it panic with sysrq-c, and captures
 * it with `vmpm capture`: the bundles the virtual-address, symbol and stack tests read. PVH `vmlinux`
 * boots without KASLR (fixed addresses); the packaged bzImage boots through SeaBIOS with KASLR, so
 * both the fixed and the randomized layout are covered. Run by hand:
 * `node dist/test/linux/vaddr-guest.js pvh|bzImage OUT.vmpm [MEMORY]` keeps a bundle for exploring.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { runCli } from '../helpers/cli';
import { extraQmp } from '../watch/helpers';
import { buildLinuxGuest, type BuildResult } from './build-guest';

/** TCG boots this guest to the panic in 3-11 s on a shared 2-core machine; 3x headroom. */
const PANIC_TIMEOUT_MS = 45_000;

export interface CapturedLinux {
  bundle: string;
  guest: BuildResult;
  kernelFormat: 'pvh-vmlinux' | 'bzImage';
  id: string;
  serial: string;
  cleanup(): void;
}

export async function captureLinuxPanic(
  options: { kernel: 'pvh' | 'bzImage'; memory?: string; smp?: number; log?: (line: string) => void },
): Promise<CapturedLinux> {
  const guest = await buildLinuxGuest({ log: options.log });
  const kernel = options.kernel === 'pvh' ? guest.kernel : join(guest.dir, 'vmlinuz');
  const kernelFormat = options.kernel === 'pvh' && guest.kernelFormat === 'pvh-vmlinux' ? 'pvh-vmlinux' : 'bzImage';
  if (!existsSync(kernel)) throw new Error(`no kernel at ${kernel}`);
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-vaddr-'));
  const id = randomBytes(6).toString('hex');
  const serialFile = join(dir, 'serial.log');
  const captureSock = join(dir, 'capture.sock');
  const qemu = await launchQemu(
    [
      '-kernel', kernel,
      '-initrd', guest.initrd,
      '-append', `console=ttyS0 panic=0 printk_devkmsg=on guest_id=${id}`,
      '-no-reboot',
      '-device', 'pvpanic',
      '-device', 'vmcoreinfo',
    ],
    { memory: options.memory ?? '256M', smp: options.smp ?? 2, startPaused: true, name: `vaddr-${id}`, serialFile, extraArgs: extraQmp(captureSock) },
  );
  const serial = (): string => (existsSync(serialFile) ? readFileSync(serialFile, 'latin1') : '');
  try {
    const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
    try {
      await client.execute('cont');
      const deadline = Date.now() + PANIC_TIMEOUT_MS;
      for (;;) {
        const s = await client.execute<{ status: string }>('query-status');
        if (s.status === 'guest-panicked') break;
        if (Date.now() > deadline) throw new Error(`no panic after ${PANIC_TIMEOUT_MS} ms (status ${s.status}); serial tail:\n${serial().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await client.close();
    }
    const bundle = join(dir, 'linux.vmpm');
    const r = await runCli(['capture', '--qmp', `unix:${captureSock}`, '-o', bundle, '--keep-stopped'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`vmpm capture failed (${r.code}): ${r.stderr}`);
    return { bundle, guest, kernelFormat, id, serial: serial(), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await qemu.kill();
  }
}

if (require.main === module) {
  const [kind, out, memory] = process.argv.slice(2);
  if ((kind !== 'pvh' && kind !== 'bzImage') || out === undefined) {
    process.stderr.write('usage: node dist/test/linux/vaddr-guest.js pvh|bzImage OUT.vmpm [MEMORY]\n');
    process.exit(2);
  }
  captureLinuxPanic({ kernel: kind, memory, log: (l) => process.stderr.write(`${l}\n`) }).then(
    (c) => {
      renameSync(c.bundle, out);
      c.cleanup();
      process.stdout.write(`${out} (${c.kernelFormat}, guest ${c.id})\n`);
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
