import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CpusSection } from '../../src/bundle/schema';
import { capture, type CaptureOptions } from '../../src/capture';
import { QmpClient } from '../../src/qmp';
import { VmpmError } from '../../src/util/errors';
import { snapshotStream, x86CpuTail } from '../formats/migration-builder';
import { startFakeQemu, type FaultHook } from '../helpers/fake-qemu';
import { fakeSnapshot, type FakeSnapshotOptions, type FakeSnapshotState } from '../helpers/fake-snapshot';
import { withBundle } from './harness';

/**
 * Issue 12: QEMU 7.2's background-snapshot setup (it reads every guest page before its own stop)
 * sends nothing on the stream, and on a loaded host it outlasted the 60 s stream-idle bound at 4 GiB:
 * the capture failed with "the migration stream stalled" while QEMU was working. Here a fake QEMU
 * stays in setup (query-migrate status `setup`) five times longer than a short idle bound.
 */
const runtime = mkdtempSync(join(tmpdir(), 'vmpm-snapsetup-runtime-'));
process.env.VMPM_RUNTIME_DIR ??= runtime;
const dirs: string[] = [runtime];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ALLOW = ['cont', 'migrate', 'migrate-set-capabilities', 'migrate-set-parameters', 'migrate_cancel'];
/**
 * The stream-idle bound. Seconds, not a few hundred ms: the fake QEMU runs in this process, so on a
 * loaded machine its replies and the capture's reads compete for the same event loop, and a short
 * bound could run out for reasons that have nothing to do with what is tested.
 */
const IDLE_MS = 2000;
/** SMALL_MTREE's pc.ram: 16 MiB. */
const PAGES = 4096;

async function captureFake(
  snapshot: Omit<FakeSnapshotOptions, 'stream'>,
  options: Partial<CaptureOptions>,
  wrap: (fault: FaultHook) => FaultHook = (f) => f,
): Promise<{ result: unknown; snap: FakeSnapshotState; qemuStatus: string; commands: string[]; dir: string; output: string; ms: number }> {
  const fake = fakeSnapshot({ ...snapshot, stream: snapshotStream('pc.ram', PAGES, x86CpuTail({ rax: 0xc0ffee01n })) });
  const qemu = await startFakeQemu({ fault: wrap(fake.fault) });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-snapsetup-'));
  dirs.push(dir);
  const output = join(dir, 'snap.vmpm');
  const client = await QmpClient.connect(qemu.endpoint, { allow: ALLOW, connectTimeoutMs: 5000 });
  const t0 = performance.now();
  try {
    const result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'snapshot', fifoIdleTimeoutMs: IDLE_MS, ...options }).catch((e: unknown) => e);
    return { result, snap: fake.state, qemuStatus: qemu.state.status, commands: qemu.state.commands, dir, output, ms: performance.now() - t0 };
  } finally {
    await client.close().catch(() => undefined);
    await qemu.stop();
  }
}

test('QEMU setting up longer than the stream-idle bound is not a stall: the capture completes', async () => {
  const r = await captureFake({ setupMs: 5 * IDLE_MS }, {});
  assert.ok(!(r.result instanceof Error), String(r.result));
  assert.ok(r.snap.setupPolls >= 2, `query-migrate was asked during the setup (${r.snap.setupPolls} times)`);
  assert.equal(r.qemuStatus, 'running');
  assert.deepEqual({ bg: r.snap.backgroundSnapshot, bw: r.snap.maxBandwidth }, { bg: false, bw: 134217728 });
  assert.ok(!r.commands.includes('migrate_cancel'));
  await withBundle(r.output, async (reader) => {
    const cpus = await reader.json<CpusSection>('cpus');
    assert.equal(cpus.source, 'migration-stream');
    assert.equal(cpus.cpus[0]!.registers.rax, '0xc0ffee01');
    assert.equal(reader.ranges().reduce((s, x) => s + x.length, 0n), BigInt(PAGES * 4096));
    assert.equal((await reader.verify()).ok, true);
  });
});

test('a setup that never ends: one line naming the setup, no bundle, migration cancelled, settings restored, guest running', async () => {
  const r = await captureFake({ setupMs: Infinity }, { snapshotSetupTimeoutMs: 1000 });
  assert.ok(r.result instanceof VmpmError, String(r.result));
  process.stdout.write(`${r.result.message}\n`);
  assert.match(r.result.message, /still setting up after 1 s/);
  assert.doesNotMatch(r.result.message, /\n/);
  assert.deepEqual(readdirSync(r.dir), []);
  assert.equal(r.snap.status, 'cancelled');
  assert.ok(r.commands.includes('migrate_cancel'));
  assert.deepEqual({ bg: r.snap.backgroundSnapshot, bw: r.snap.maxBandwidth }, { bg: false, bw: 134217728 });
  assert.equal(r.qemuStatus, 'running');
  // The setup bound, then at most the 10 s wait for the setup to end before the socket is closed,
  // the 3 s wait for QEMU to give up by itself and migrate_cancel.
  assert.ok(r.ms < 25_000, `failed after ${Math.round(r.ms)} ms`);
});

test('a QEMU that stops answering during its setup: the idle bound still ends the capture in one line', async () => {
  let silent = false;
  const r = await captureFake({ setupMs: Infinity }, {}, (fault) => (cmd, conn, state, step) => {
    if (step === 'migrate') silent = true;
    else if (silent && step === 'query-migrate') return true; // never answered
    return fault(cmd, conn, state, step);
  });
  assert.ok(r.result instanceof VmpmError, String(r.result));
  process.stdout.write(`${r.result.message}\n`);
  assert.match(r.result.message, new RegExp(`stalled: no data for ${IDLE_MS} ms`));
  assert.doesNotMatch(r.result.message, /\n/);
  assert.deepEqual(readdirSync(r.dir), []);
  assert.deepEqual({ bg: r.snap.backgroundSnapshot, bw: r.snap.maxBandwidth }, { bg: false, bw: 134217728 });
  assert.equal(r.qemuStatus, 'running');
  assert.ok(r.ms < 40_000, `failed after ${Math.round(r.ms)} ms`);
});

test('QEMU giving up during its setup: its reason in one line at once, not a stall or a wait for the bounds', async () => {
  const r = await captureFake({ setupMs: Infinity, failAfterMs: 400, errorDesc: 'Failed to prepare RAM for write tracking' }, { fifoIdleTimeoutMs: 30_000 });
  assertQemuReasonOnce(r);
  assert.deepEqual({ bg: r.snap.backgroundSnapshot, bw: r.snap.maxBandwidth }, { bg: false, bw: 134217728 });
  assert.equal(r.qemuStatus, 'running');
  assert.ok(r.ms < 10_000, `failed after ${Math.round(r.ms)} ms`);
});

test("QEMU giving up during its setup with the stream still open: the setup watch reports QEMU's reason once", async () => {
  const r = await captureFake(
    { setupMs: Infinity, failAfterMs: 400, errorDesc: 'Failed to prepare RAM for write tracking', keepStreamOnFail: true },
    { fifoIdleTimeoutMs: 30_000 },
  );
  assertQemuReasonOnce(r);
  assert.equal(r.qemuStatus, 'running');
});

/**
 * QEMU gave up during its setup ('Failed to prepare RAM for write tracking'): one line with its reason,
 * once (the setup watch's interruption is QEMU's reason already: it used to be wrapped in the same
 * reason again), nothing left in the FIFO directory, and no migrate_cancel (a migration QEMU ended
 * needs none).
 */
function assertQemuReasonOnce(r: Awaited<ReturnType<typeof captureFake>>): void {
  assert.ok(r.result instanceof VmpmError, String(r.result));
  process.stdout.write(`${r.result.message}\n`);
  assert.match(r.result.message, /QEMU's background snapshot failed: Failed to prepare RAM for write tracking/);
  assert.equal(r.result.message.split('Failed to prepare RAM for write tracking').length - 1, 1, r.result.message);
  assert.doesNotMatch(r.result.message, /\n/);
  assert.deepEqual(readdirSync(r.dir), []);
  assert.ok(!r.commands.includes('migrate_cancel'), 'a migration QEMU ended needs no cancel');
}
