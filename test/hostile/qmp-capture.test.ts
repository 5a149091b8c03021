import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startFakeQemu, type FakeQemuOptions, SMALL_MTREE } from '../helpers/fake-qemu';
import { runCli } from '../helpers/cli';
import { cleanupHostileRuns, oneLineFailure, runHostile, type HostileRun } from './run';

/**
 * Issue 13: a hostile QMP server suite for `vmpm capture`. Every fault ends in one clear line (exit 1),
 * with bounded memory, the guest left as the policy says (stop-and-restore: resumed whenever the
 * connection still allows it), and nothing at the output path that looks like a bundle.
 */
after(cleanupHostileRuns);
const MAX_PEAK_KB = 256 * 1024;

async function captureAgainst(options: FakeQemuOptions, extra: string[] = [], timeoutMs = 60_000): Promise<{ run: HostileRun; status: string; commands: string[] }> {
  const fake = await startFakeQemu(options);
  try {
    const run = await runHostile(['capture', '--qmp', fake.endpoint, '-o', '{out}/c.vmpm', '--memory-method', 'pmemsave', ...extra], { timeoutMs });
    return { run, status: fake.state.status, commands: fake.state.commands };
  } finally {
    await fake.stop();
  }
}

function assertCleanFailure(r: HostileRun, what: string, pattern?: RegExp): void {
  assert.equal(oneLineFailure(r), undefined, `${what}: ${r.stderr}`);
  if (pattern) assert.match(r.stderr, pattern, what);
  assert.deepEqual(r.outFiles, [], `${what}: the output directory must stay empty`);
  assert.deepEqual(r.tmpFiles, [], `${what}: FIFO directories must be removed`);
  if (r.peakKb !== undefined) assert.ok(r.peakKb < MAX_PEAK_KB, `${what}: peak RSS ${r.peakKb} KiB`);
}

test('a clean capture against the fake QEMU succeeds (the baseline every fault below departs from)', async () => {
  const { run, status, commands } = await captureAgainst({});
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(run.outFiles, ['c.vmpm']);
  assert.equal(status, 'running');
  assert.ok(commands.includes('pmemsave') && commands.includes('cont'));
});

test('a monitor that disconnects at any step of a capture: one line, no bundle, no FIFO left, guest resumed when still reachable', async () => {
  const { commands } = await captureAgainst({});
  for (let i = 0; i < commands.length; i++) {
    const { run, status } = await captureAgainst({
      fault: (_cmd, conn, state) => {
        if (state.commands.length - 1 !== i) return false;
        conn.socket.destroy();
        return true;
      },
    });
    const what = `disconnect at step ${i} (${commands[i]})`;
    // After the last step the bundle is complete: the capture may succeed (the final query-status is informational).
    if (run.code === 0) {
      assert.ok(i >= commands.indexOf('cont'), `${what}: succeeded before the guest was restored`);
      continue;
    }
    assertCleanFailure(run, what);
    if (commands.indexOf('stop') < i && status === 'paused') assert.match(run.stderr, /paused|stopped|resume/i, `${what}: a guest vmpm left paused must be said so: ${run.stderr}`);
  }
});

test('malformed, huge, wrongly-addressed and wrongly-shaped replies each end in one clear line', async () => {
  const cases: Array<{ name: string; options: FakeQemuOptions; expect: RegExp; restored?: boolean; extra?: string[] }> = [
    { name: 'greeting without version', options: { greeting: { QMP: { capabilities: [] } } }, expect: /malformed QMP greeting/ },
    { name: 'greeting that is not JSON', options: { greeting: '{"QMP": {' }, expect: /QMP|JSON/ },
    {
      name: 'query-version {}',
      options: { fault: (cmd, conn, _s, step) => step === 'query-version' && (conn.reply(cmd, {}), true) },
      expect: /reply to query-version is not what QMP specifies: reply field qemu must be present/,
      restored: true,
    },
    {
      name: 'query-status with a numeric status',
      options: { fault: (cmd, conn, s, step) => step === 'query-status' && s.commands.length === 2 && (conn.reply(cmd, { status: 5, running: true }), true) },
      expect: /reply to query-status is not what QMP specifies: reply field status must be a string/,
    },
    {
      name: 'invalid JSON line',
      options: { fault: (_c, conn, _s, step) => step === 'query-target' && (conn.send('{"return": {"arch": '), true) },
      expect: /JSON|protocol|closed/i,
    },
    {
      name: 'a 64 MiB line with no newline',
      options: { fault: (_c, conn, _s, step) => step === 'query-name' && (void conn.sendRaw(Buffer.alloc(64 << 20, 0x61)).catch(() => undefined), true) },
      expect: /line|long|bytes/i,
    },
    {
      name: 'a reply with the wrong id, then silence',
      options: {
        fault: (_cmd, conn, _s, step) => {
          if (step !== 'query-uuid') return false;
          conn.send({ return: { UUID: 'x' }, id: 'not-yours' });
          setTimeout(() => conn.socket.destroy(), 500);
          return true;
        },
      },
      expect: /closed|disconnect/i,
    },
    {
      name: 'pmemsave that never opens the FIFO and never replies',
      options: { fault: (_c, _conn, _s, step) => step === 'pmemsave' },
      expect: /did not open the memory FIFO/,
      restored: true,
    },
  ];
  for (const c of cases) {
    const { run, status } = await captureAgainst(c.options, c.extra);
    assertCleanFailure(run, c.name, c.expect);
    if (c.restored) assert.equal(status, 'running', `${c.name}: stop-and-restore must resume the guest it stopped`);
  }
});

test('optional queries answered with the wrong shape are warnings; the bundle is complete and every reader takes it', async () => {
  const wrong: Record<string, unknown> = { 'query-memdev': {}, 'query-block': { device: 1 }, 'query-cpus-fast': 'x', 'query-memory-size-summary': [] };
  const { run } = await captureAgainst({ fault: (cmd, conn, _s, step) => step in wrong && (conn.reply(cmd, wrong[step]), true) });
  assert.equal(run.code, 0, run.stderr);
  for (const name of Object.keys(wrong)) assert.match(run.stderr, new RegExp(`warning: ${name} failed: QEMU's reply to ${name} is not what QMP specifies`));
  const bundle = join(run.outDir, 'c.vmpm');
  for (const cmd of ['info', 'memmap', 'regs', 'errors', 'events']) {
    const r = await runCli([cmd, bundle]);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  }
});

test('a memory map claiming 48 TiB of RAM does not overflow the pmemsave timer (it fired at once before)', async () => {
  const huge = SMALL_MTREE.replace('0000000000000000-0000000000ffffff (prio 0, ram): pc.ram', '0000000000000000-00002fffffffffff (prio 0, ram): pc.ram');
  const { run } = await captureAgainst({
    mtree: huge,
    fault: (cmd, conn, _s, step) => {
      if (step !== 'pmemsave') return false;
      setTimeout(() => conn.send({ error: { class: 'GenericError', desc: 'Invalid parameter' }, id: cmd.id }), 1500);
      return true;
    },
  });
  assert.doesNotMatch(run.stderr, /TimeoutOverflowWarning|no reply within/);
  assertCleanFailure(run, '48 TiB', /Invalid parameter/);
});
