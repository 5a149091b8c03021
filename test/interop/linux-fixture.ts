/**
 * One real Linux guest shared by the interop tests: the Debian kernel from test/linux/build-guest.ts,
 * 2 vCPUs, 256 MiB, -device vmcoreinfo; it writes a per-run marker into the kernel log and panics
 * (sysrq-c); QEMU pauses it. Then, of the same stopped guest: a vmpm capture (`vmpm capture`), QEMU's
 * own ELF dump and QEMU's own kdump-zlib dump (flattened, as QEMU 7.2 always writes it).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchQemu, type LaunchedQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { buildLinuxGuest } from '../linux/build-guest';
import { runCli } from '../helpers/cli';
import { extraQmp } from '../watch/helpers';

export interface LinuxFixture {
  dir: string;
  marker: string;
  bundle: string;
  qemuElf: string;
  qemuKdump: string;
  qemu: LaunchedQemu;
  cleanup(): Promise<void>;
}

const PANIC_TIMEOUT_MS = 60_000;

export async function linuxFixture(log: (line: string) => void): Promise<LinuxFixture> {
  const guest = await buildLinuxGuest({ log });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-interop-'));
  const id = randomBytes(6).toString('hex');
  const serialFile = join(dir, 'serial.log');
  const sock = join(dir, 'test.qmp');
  const qemu = await launchQemu(
    [
      '-kernel', guest.kernel,
      '-initrd', guest.initrd,
      '-append', `console=ttyS0 panic=0 printk_devkmsg=on guest_id=${id}`,
      '-no-reboot',
      '-device', 'pvpanic',
      '-device', 'vmcoreinfo',
    ],
    { memory: '256M', smp: 2, startPaused: true, name: `interop-${id}`, serialFile, extraArgs: extraQmp(sock) },
  );
  const cleanup = async (): Promise<void> => {
    await qemu.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const client = await QmpClient.connect(`unix:${sock}`, { allow: ['cont'] });
    try {
      const panicked = client.waitForEvent('GUEST_PANICKED', { timeoutMs: PANIC_TIMEOUT_MS });
      await client.execute('cont');
      await panicked.catch((err: Error) => {
        let serial = '';
        try {
          serial = readFileSync(serialFile, 'latin1').slice(-3000);
        } catch {
          // no serial output yet
        }
        throw new Error(`${err.message}\n--- serial (tail) ---\n${serial}\n--- QEMU stderr ---\n${qemu.stderr()}`);
      });
      const bundle = join(dir, 'linux.vmpm');
      const cap = await runCli(['capture', '--qmp', qemu.endpoint, '-o', bundle], { timeoutMs: 120_000 });
      if (cap.code !== 0) throw new Error(`vmpm capture failed: ${cap.stderr}`);
      const qemuElf = join(dir, 'qemu.elf');
      const qemuKdump = join(dir, 'qemu.kdump-zlib');
      await client.execute('dump-guest-memory', { paging: false, protocol: `file:${qemuElf}` }, { timeoutMs: 120_000 });
      await client.execute('dump-guest-memory', { paging: false, protocol: `file:${qemuKdump}`, format: 'kdump-zlib' }, { timeoutMs: 120_000 });
      return { dir, marker: `VMPM-LINUX-MARKER-${id}`, bundle, qemuElf, qemuKdump, qemu, cleanup };
    } finally {
      await client.close();
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Runs a fixture script by hand: `node dist/test/interop/linux-fixture.js DIR` keeps the files in DIR. */
if (require.main === module) {
  void (async () => {
    const f = await linuxFixture((l) => process.stderr.write(`${l}\n`));
    const keep = process.argv[2];
    if (keep) {
      for (const [k, v] of Object.entries({ bundle: f.bundle, qemuElf: f.qemuElf, qemuKdump: f.qemuKdump })) {
        const { copyFileSync } = await import('node:fs');
        copyFileSync(v, join(keep, k === 'bundle' ? 'linux.vmpm' : k === 'qemuElf' ? 'qemu.elf' : 'qemu.kdump'));
      }
      process.stdout.write(`${f.marker}\n`);
    }
    await f.cleanup();
  })();
}
