import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeQemu, type FakeQemuOptions } from '../helpers/fake-qemu';
import { runNode, VMPM_BIN } from '../helpers/cli';

/**
 * Issue 13 items 3 and 8, against a fake QEMU: watch's backoff applies to every failed session, one
 * stop of the guest is one incident however often the monitor drops, and the notification carries
 * the events that led up to the trigger.
 */
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function watchFor(ms: number, options: FakeQemuOptions): Promise<{ stdout: string; stderr: string; connections: number; bundles: string[] }> {
  const fake = await startFakeQemu(options);
  const out = mkdtempSync(join(tmpdir(), 'vmpm-hostile-watch-'));
  dirs.push(out);
  try {
    const watch = runNode(VMPM_BIN, ['watch', '--qmp', fake.endpoint, '--out-dir', out, '--memory-method', 'pmemsave', '--settle', '0'], { env: { NO_COLOR: '1' }, timeoutMs: ms + 60_000 });
    await new Promise((r) => setTimeout(r, ms));
    watch.kill('SIGTERM');
    const { stdout, stderr } = await watch.done;
    return { stdout, stderr, connections: fake.state.connections, bundles: readdirSync(out) };
  } finally {
    await fake.stop();
  }
}

test('a monitor that greets, negotiates, then drops the next command is reconnected to at most once per backoff step', async () => {
  const r = await watchFor(5000, {
    fault: (_c, conn, _s, step) => {
      if (step === 'qmp_capabilities') return false;
      conn.socket.destroy();
      return true;
    },
  });
  // 250 ms, 500 ms, 1 s, 2 s (+-20 %): at most 6 sessions in 5 s (2,059 before the fix).
  assert.ok(r.connections >= 2 && r.connections <= 6, `${r.connections} connections in 5 s\n${r.stderr}`);
  assert.ok(r.stderr.split('\n').length < 20, `log lines: ${r.stderr}`);
});

test('a guest stopped once is one incident even when the monitor drops at info registers on every reconnect', async () => {
  const r = await watchFor(6000, {
    status: 'guest-panicked',
    fault: (_c, conn, _s, step) => {
      if (step !== 'hmp:info registers -a') return false;
      conn.socket.destroy();
      return true;
    },
  });
  const incidents = r.stdout.split('\n').filter((l) => l.includes('"type":"incident"'));
  assert.equal(incidents.length, 1, `${incidents.length} notifications (105 in 20 s before the fix)\n${r.stderr}`);
  assert.match(incidents[0]!, /"failoverSafe":false/);
  assert.match(r.stderr, /the same stop as the incident of GUEST_PANICKED, not a new incident/);
  assert.deepEqual(r.bundles.filter((b) => b.endsWith('.vmpm')), []);
});

test('the notification carries the events that led up to the trigger (MEMORY_FAILURE 60 ms before GUEST_PANICKED)', async () => {
  let sent = false;
  const r = await watchFor(5000, {
    fault: (_c, conn, state, step) => {
      if (step !== 'query-status' || sent) return false;
      sent = true;
      setTimeout(() => {
        conn.event('MEMORY_FAILURE', { recipient: 'guest', action: 'ignore', flags: { 'action-required': false, recursive: false } });
        setTimeout(() => {
          state.status = 'guest-panicked';
          conn.event('GUEST_PANICKED', { action: 'pause' });
          conn.event('STOP');
        }, 60);
      }, 500);
      return false;
    },
  });
  const line = r.stdout.split('\n').find((l) => l.includes('"type":"incident"'));
  assert.ok(line, r.stderr);
  const n = JSON.parse(line) as { events: Array<{ event: string }>; trigger: { event: string }; failoverSafe: boolean };
  assert.equal(n.trigger.event, 'GUEST_PANICKED');
  assert.deepEqual(n.events.map((e) => e.event).slice(0, 2), ['MEMORY_FAILURE', 'GUEST_PANICKED']);
  assert.equal(n.failoverSafe, true, r.stderr);
});
