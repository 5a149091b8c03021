import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../src/bundle/schema';
import { launchBootSectorGuest, launchQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { VMPM_BIN, runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { withBundle } from './harness';

const skip = requireTools('qemu-system-x86_64');
const fifoDirs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('vmpm-fifo-'));

test('vmpm capture --attach and --label: the file is stored verbatim as attachment/<name>, the label in the manifest', { skip }, async () => {
  const qemu = await launchBootSectorGuest({});
  try {
    const log = join(qemu.dir, 'serial.log');
    writeFileSync(log, 'Kernel panic - not syncing: test\n');
    const out = join(qemu.dir, 'att.vmpm');
    const r = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--no-memory', '--attach', log, '--label', 'ticket 42']);
    assert.equal(r.code, 0, r.stderr);
    await withBundle(out, async (reader) => {
      assert.equal((await reader.raw('attachment/serial.log')).toString(), 'Kernel panic - not syncing: test\n');
      assert.equal((await reader.json<Manifest>('manifest')).label, 'ticket 42');
    });
    const missing = await runCli(['capture', '--qmp', qemu.endpoint, '-o', join(qemu.dir, 'x.vmpm'), '--attach', join(qemu.dir, 'nope.log')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot attach .*nope\.log/);
  } finally {
    await qemu.kill();
  }
});

test('Ctrl-C during vmpm capture: clean one-line error, no bundle, FIFOs removed, the guest it stopped runs again', { skip }, async () => {
  const qemu = await launchQemu([], { memory: '2G' });
  try {
    const out = join(qemu.dir, 'sigint.vmpm');
    const before = fifoDirs();
    const child = spawn(process.execPath, [VMPM_BIN, 'capture', '--qmp', qemu.endpoint, '-o', out, '--memory-method', 'dump'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Strike once the memory stream exists (its FIFO directory appears).
    const deadline = Date.now() + 10_000;
    while (fifoDirs().length === before.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, stderr); // 128 + SIGINT, as the shell expects
    assert.match(stderr, /^vmpm: capture interrupted during memory; nothing complete was written\n$/);
    assert.deepEqual(readdirSync(qemu.dir).filter((n) => n.includes('sigint')), []);
    assert.deepEqual(fifoDirs(), before);
    const client = await QmpClient.connect(qemu.endpoint);
    try {
      const until = Date.now() + 10_000;
      let s = await client.execute<{ status: string }>('query-status');
      while (s.status !== 'running' && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 50));
        s = await client.execute<{ status: string }>('query-status');
      }
      assert.equal(s.status, 'running');
    } finally {
      await client.close();
    }
  } finally {
    await qemu.kill();
  }
});

test('vmpm capture --level 1 writes a bundle whose memory reads back exactly; --level 0 or 10 is a usage error before connecting', { skip }, async () => {
  const qemu = await launchBootSectorGuest({});
  try {
    await new Promise((r) => setTimeout(r, 300)); // let the guest panic and write its patterns
    const out = join(qemu.dir, 'level1.vmpm');
    const r = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--level', '1']);
    assert.equal(r.code, 0, r.stderr);
    await withBundle(out, async (reader) => {
      const marker = await reader.read(0x30000n, 17);
      assert.equal(marker.toString('latin1'), 'FORENSIC-MARKER-1');
    });
    for (const bad of ['0', '10', 'fast']) {
      const u = await runCli(['capture', '--qmp', join(qemu.dir, 'no-such.sock'), '-o', join(qemu.dir, 'x.vmpm'), '--level', bad]);
      assert.equal(u.code, 2, u.stderr);
      assert.match(u.stderr, /^vmpm: --level expects/);
    }
  } finally {
    await qemu.kill();
  }
});
