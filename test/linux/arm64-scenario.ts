/**
 * The arm64 guest (./build-guest-arm64.ts) under `qemu-system-aarch64 -M virt -cpu cortex-a57`,
 * panicked with sysrq-c. There is no pvpanic: `panic=-1 -no-reboot -no-shutdown` turns the panic's
 * reboot into SHUTDOWN (reason guest-reset) with RAM intact, then `vmpm capture` takes the bundle.
 * By hand: `node dist/test/linux/arm64-scenario.js OUT.vmpm`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { runCli } from '../helpers/cli';
import { extraQmp } from '../watch/helpers';
import { buildArm64Guest, type Arm64Guest } from './build-guest-arm64';

const PANIC_TIMEOUT_MS = 60_000;

export interface Arm64Capture {
  guest: Arm64Guest;
  bundle: string;
  serial: string;
  id: string;
  dir: string;
}

export async function captureArm64Panic(log: (line: string) => void = () => undefined): Promise<Arm64Capture> {
  const guest = await buildArm64Guest(log);
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-arm64-'));
  const id = randomBytes(6).toString('hex');
  const serialFile = join(dir, 'serial.log');
  const serial = (): string => (existsSync(serialFile) ? readFileSync(serialFile, 'latin1') : '');
  const sock = join(dir, 'driver.sock');
  const qemu = await launchQemu(
    [
      '-M', 'virt',
      '-cpu', 'cortex-a57',
      '-kernel', guest.kernel,
      '-initrd', guest.initrd,
      '-append', `console=ttyAMA0 panic=-1 printk_devkmsg=on guest_id=${id}`,
      '-no-reboot',
      '-device', 'vmcoreinfo',
    ],
    { arch: 'aarch64', memory: '256M', smp: 2, startPaused: true, name: `arm64-${id}`, serialFile, extraArgs: extraQmp(sock) },
  );
  try {
    const client = await QmpClient.connect(`unix:${sock}`, { allow: ['cont'] });
    try {
      await client.execute('cont');
      const deadline = Date.now() + PANIC_TIMEOUT_MS;
      for (;;) {
        const s = await client.execute<{ status: string }>('query-status');
        if (s.status === 'shutdown' || s.status === 'guest-panicked') break;
        if (Date.now() > deadline) throw new Error(`no panic after ${PANIC_TIMEOUT_MS} ms (status ${s.status}); serial tail:\n${serial().slice(-2000)}\n${qemu.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await client.close();
    }
    const bundle = join(dir, 'arm64.vmpm');
    const r = await runCli(['capture', '--qmp', qemu.endpoint, '-o', bundle, '--keep-stopped'], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`vmpm capture exited ${r.code}: ${r.stderr}`);
    return { guest, bundle, serial: serial(), id, dir };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    await qemu.kill();
  }
}

if (require.main === module) {
  const out = process.argv[2];
  if (out === undefined) {
    process.stderr.write('usage: node dist/test/linux/arm64-scenario.js OUT.vmpm\n');
    process.exit(2);
  }
  captureArm64Panic((l) => process.stderr.write(`${l}\n`)).then(
    (c) => {
      renameSync(c.bundle, resolve(out));
      rmSync(c.dir, { recursive: true, force: true });
      process.stdout.write(`${out} (arm64 guest ${c.id})\n`);
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    },
  );
}
