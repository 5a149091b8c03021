import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import { launchBootSectorGuest, launchQemu } from '../../src/guest';
import { VmpmError } from '../../src/util/errors';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { runUntil, status, withBundle, withGuest } from './harness';

const skip = requireTools('qemu-system-x86_64');
// This process's FIFO directories only (they carry the creating pid): other jobs on the machine capture into /tmp too.
const fifoDirs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith(`vmpm-fifo-${process.pid}-`));
/** Big enough that the dump is still streaming when the test strikes. */
const bigPanicked = (): ReturnType<typeof launchBootSectorGuest> => launchBootSectorGuest({ startPaused: true, memory: '1G' });

test('QEMU killed mid-stream: one-line error naming QEMU, no bundle, no temp file, FIFOs removed', { skip }, async () => {
  await withGuest(bigPanicked, async ({ qemu, client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const fifosBefore = fifoDirs();
    const output = join(dir, 'killed.vmpm');
    let killed = false;
    const err = await capture(client, {
      output,
      quiesce: 'stop-and-restore',
      memory: 'dump',
      onProgress: (p) => {
        if (p.phase === 'memory' && (p.done ?? 0) > 0 && !killed) {
          killed = true;
          process.kill(qemu.pid, 'SIGKILL');
        }
      },
    }).then(
      () => assert.fail('capture should fail'),
      (e: unknown) => e,
    );
    assert.ok(killed);
    assert.ok(err instanceof VmpmError);
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, /QEMU|ended early/);
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(fifoDirs(), fifosBefore);
  });
});

test('QEMU killed mid-stream with keepPartial: a clearly named *.partial.vmpm that says why', { skip }, async () => {
  await withGuest(bigPanicked, async ({ qemu, client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const output = join(dir, 'case.vmpm');
    let killed = false;
    await assert.rejects(
      capture(client, {
        output,
        quiesce: 'stop-and-restore',
        memory: 'dump',
        keepPartial: true,
        onProgress: (p) => {
          if (p.phase === 'memory' && (p.done ?? 0) > 8 * 2 ** 20 && !killed) {
            killed = true;
            process.kill(qemu.pid, 'SIGKILL');
          }
        },
      }),
      VmpmError,
    );
    assert.deepEqual(readdirSync(dir), ['case.partial.vmpm']);
    await withBundle(join(dir, 'case.partial.vmpm'), async (reader) => {
      assert.equal((await reader.verify()).ok, true);
      const m = await reader.json<Manifest>('manifest');
      assert.match(m.warnings[0]!, /^PARTIAL CAPTURE: /);
      assert.equal(m.consistent, false);
      assert.ok(reader.has('cpus'));
    });
  });
});

test('interrupted (AbortSignal, as on Ctrl-C) mid-stream: no bundle, FIFOs removed, the guest vmpm stopped is running again', { skip }, async () => {
  await withGuest(() => launchQemu([], { memory: '1G' }), async ({ client, dir }) => {
    const controller = new AbortController();
    const output = join(dir, 'int.vmpm');
    const fifosBefore = fifoDirs();
    await assert.rejects(
      capture(client, {
        output,
        quiesce: 'stop-and-restore',
        memory: 'dump',
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === 'memory' && (p.done ?? 0) > 0) controller.abort();
        },
      }),
      /interrupted/,
    );
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(fifoDirs(), fifosBefore);
    // QEMU's dump ended when its pipe closed; the monitor answers and the guest runs again.
    const deadline = Date.now() + 10_000;
    while ((await status(client)).status !== 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await status(client)).status, 'running');
  });
});

test('an output directory that cannot be written fails before the guest is touched', { skip }, async () => {
  await withGuest(() => launchQemu([], {}), async ({ client, dir }) => {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    for (const output of [join(notADir, 'x.vmpm'), join(dir, 'missing', 'x.vmpm')]) {
      await assert.rejects(capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' }), (e: unknown) => {
        assert.ok(e instanceof VmpmError);
        assert.match(e.message, /x\.vmpm/);
        return true;
      });
    }
    assert.equal((await status(client)).status, 'running');
    assert.ok(!client.transcript().some((t) => t.dir === 'tx' && t.line.includes('"stop"')));
  });
});

test('an existing output file is refused (guest untouched, file unchanged); --force replaces it', { skip }, async () => {
  await withGuest(() => launchQemu([], {}), async ({ client, dir }) => {
    const output = join(dir, 'exists.vmpm');
    writeFileSync(output, 'precious');
    await assert.rejects(capture(client, { output, quiesce: 'stop-and-restore', memory: 'none' }), /already exists/);
    assert.equal(readFileSync(output, 'utf8'), 'precious');
    assert.equal((await status(client)).status, 'running');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'none', overwrite: true });
    await withBundle(output, async (r) => assert.equal((await r.verify()).ok, true));
  });
});

test('vmpm capture CLI: summary line on success; existing output is a one-line error with exit code 1', { skip }, async () => {
  const qemu = await launchBootSectorGuest({});
  try {
    const out = join(qemu.dir, 'cli.vmpm');
    const ok = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--label', 'cli test']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^captured guest \[x86_64, .*\]: 1 CPU, 64 MiB RAM in 1 range \(\d+ of 16384 pages zero\), \d+ error records? -> .*cli\.vmpm \([\d.]+ KiB\) in [\d.]+ s\n$/);
    const again = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--json']);
    assert.equal(again.code, 1);
    assert.equal(again.stderr.trim().split('\n').length, 1);
    assert.match(again.stderr, /already exists.*--force/);
    const json = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--force', '--no-memory', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const summary = JSON.parse(json.stdout) as { memoryMethod: string; cpus: number; sha256: string };
    assert.equal(summary.memoryMethod, 'none');
    assert.equal(summary.cpus, 1);
    assert.match(summary.sha256, /^[0-9a-f]{64}$/);
    const bad = await runCli(['capture', '--qmp', qemu.endpoint, '-o', out, '--keep-stopped', '--no-stop']);
    assert.equal(bad.code, 2);
  } finally {
    await qemu.kill();
  }
});
