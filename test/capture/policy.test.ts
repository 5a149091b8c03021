import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Manifest } from '../../src/bundle/schema';
import { capture, decideResume, isConsistent, shouldStop, summaryFromBundle } from '../../src/capture';
import { launchQemu } from '../../src/guest';
import { requireTools } from '../helpers/requirements';
import { status, withBundle, withGuest } from './harness';

const skip = requireTools('qemu-system-x86_64');
// No disk: SeaBIOS finds nothing to boot and the guest keeps running, which is what these tests need.
const runningGuest = (): ReturnType<typeof launchQemu> => launchQemu([], {});

async function manifestOf(path: string): Promise<Manifest> {
  return withBundle(path, (r) => r.json<Manifest>('manifest'));
}

test('policy rules: stop only a running guest, resume only what vmpm stopped and left merely paused', () => {
  const running = { status: 'running', running: true };
  const paused = { status: 'paused', running: false };
  assert.equal(shouldStop('stop-and-restore', running), true);
  assert.equal(shouldStop('keep-stopped', running), true);
  assert.equal(shouldStop('no-stop', running), false);
  for (const s of ['paused', 'guest-panicked', 'io-error', 'prelaunch', 'shutdown']) {
    assert.equal(shouldStop('stop-and-restore', { status: s, running: false }), false, s);
  }
  assert.deepEqual(decideResume('stop-and-restore', true, paused), { resume: true });
  assert.equal(decideResume('stop-and-restore', false, paused).resume, false);
  assert.equal(decideResume('keep-stopped', true, paused).resume, false);
  assert.equal(decideResume('no-stop', true, paused).resume, false);
  // The guest panicked or hit an I/O error while vmpm held it: that is news, not something to resume past.
  assert.equal(decideResume('stop-and-restore', true, { status: 'guest-panicked', running: false }).resume, false);
  assert.equal(decideResume('stop-and-restore', true, { status: 'io-error', running: false }).resume, false);
  assert.equal(isConsistent('no-stop', running), false);
  assert.equal(isConsistent('no-stop', paused), true);
  assert.equal(isConsistent('stop-and-restore', running), true);
});

test('running before, default policy: stopped first, captured, resumed; every state change recorded with times', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    const output = join(dir, 'r.vmpm');
    const result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    assert.equal((await status(client)).status, 'running');
    const m = await manifestOf(output);
    assert.equal(m.runState.before.status, 'running');
    assert.equal(m.runState.after.status, 'running');
    assert.equal(m.consistent, true);
    assert.deepEqual(m.actions.map((a) => [a.action, a.result]), [['stop', 'ok'], ['dump-guest-memory', 'ok'], ['cont', 'ok']]);
    for (const a of m.actions) {
      assert.ok(Date.parse(a.at) >= Date.parse(m.createdAt));
      assert.ok(a.durationMs >= 0);
    }
    assert.ok(result.summary.guestStoppedMs !== null && result.summary.guestStoppedMs >= 0);
    // The first command after query-status is the stop.
    const sent = m.actions[0]!;
    assert.equal(sent.action, 'stop');
  });
});

test('running before, keep-stopped: left paused (failover-safe) and never resumed', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    const output = join(dir, 'k.vmpm');
    await capture(client, { output, quiesce: 'keep-stopped', memory: 'none' });
    assert.deepEqual(await status(client), { status: 'paused', running: false });
    const m = await manifestOf(output);
    assert.deepEqual(m.actions.map((a) => a.action), ['stop']);
    assert.equal(m.runState.after.status, 'paused');
  });
});

test('running before, no-stop: never stopped, marked inconsistent', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    const output = join(dir, 'n.vmpm');
    const result = await capture(client, { output, quiesce: 'no-stop', memory: 'pmemsave' });
    assert.equal((await status(client)).status, 'running');
    const m = await manifestOf(output);
    assert.equal(m.consistent, false);
    assert.equal(result.summary.consistent, false);
    assert.ok(!m.actions.some((a) => a.action === 'stop' || a.action === 'cont'));
  }, []);
});

test('paused before: captured as found and left paused (vmpm resumes only what it stopped)', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    await client.execute('stop');
    const output = join(dir, 'p.vmpm');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'none' });
    assert.deepEqual(await status(client), { status: 'paused', running: false });
    const m = await manifestOf(output);
    assert.deepEqual(m.actions, []);
    assert.equal(m.runState.before.status, 'paused');
    assert.equal(m.runState.after.status, 'paused');
  });
});

test('--no-memory: a metadata-only bundle with registers, memory map and no RAM, in well under a second', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    const output = join(dir, 'meta.vmpm');
    const t0 = performance.now();
    const result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'none' });
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `${ms} ms`);
    assert.ok(result.size < 200 * 1024, `${result.size} bytes`);
    await withBundle(output, async (r) => {
      assert.equal(r.ranges().length, 0);
      for (const s of ['manifest', 'cpus', 'memmap', 'block', 'errors', 'events', 'qmp-transcript']) assert.ok(r.has(s), s);
      assert.equal(r.has('elf-notes'), false);
      const m = await r.json<Manifest>('manifest');
      assert.equal(m.policy.memory, 'none');
    });
  });
});

test('a refused cont (client without allow) does not cost the capture: bundle written, guest left stopped, the refusal recorded', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    const output = join(dir, 'noresume.vmpm');
    const result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'none' });
    assert.deepEqual(await status(client), { status: 'paused', running: false });
    assert.match(result.summary.warnings.join('\n'), /could not resume the guest vmpm stopped .*cont/);
    const m = await manifestOf(output);
    assert.deepEqual(m.actions.map((a) => [a.action, a.result]), [['stop', 'ok'], ['cont', 'error']]);
    assert.equal(m.runState.after.status, 'paused');
  }, []);
});

test('one summary: the bundle on disk gives the summary the capture returned (same pause, same totals)', { skip }, async () => {
  await withGuest(runningGuest, async ({ client, dir }) => {
    for (const memory of ['dump', 'pmemsave'] as const) {
      const output = join(dir, `${memory}.vmpm`);
      const result = await capture(client, { output, quiesce: 'stop-and-restore', memory });
      assert.ok(result.summary.guestStoppedMs !== null);
      const fromDisk = await withBundle(output, (r) => summaryFromBundle(r));
      // durationMs alone differs by design: the capture's wall time against the manifest's total.
      assert.deepEqual({ ...fromDisk, durationMs: 0 }, { ...result.summary, durationMs: 0 });
      assert.ok(fromDisk.durationMs <= result.summary.durationMs);
    }
  });
});
