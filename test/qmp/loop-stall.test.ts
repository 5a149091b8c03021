/**
 * A stalled event loop is not a silent QEMU. Node runs expired timers before pending I/O, so when
 * vmpm's own loop is blocked past a QMP bound (a long synchronous step, a starved process on a loaded
 * host), a plain timer fires first with QEMU's answer already in the kernel, and vmpm would report
 * "no reply within N ms" for a QEMU that answered in time. Every QMP bound (the connect, each command,
 * each event wait) yields once before it gives up (src/util/io-deadline.ts).
 *
 * Each test lets the fake QEMU answer, then blocks the loop for three bounds. The block starts in a
 * setImmediate callback, so the next loop iteration begins with the timers: before the fix the bound
 * fired before the answer was read, every time. The answer is written before the block starts, so
 * nothing here depends on the machine's speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QmpClient } from '../../src/qmp';
import { withFake, type FakeConnection } from '../helpers/fake-qmp';
import { blockLoop, checkPhase } from '../helpers/loop-stall';

const BOUND_MS = 300;

/** Writes on the fake's socket from the check phase, then blocks this process's loop for three bounds. */
async function answerThenStall(conn: FakeConnection, send: () => void): Promise<void> {
  await checkPhase();
  send();
  assert.equal(conn.socket.writableLength, 0, 'the answer is in the kernel before the stall');
  blockLoop(BOUND_MS * 3);
}

test('a command reply that arrives while the loop is blocked past the command timeout is taken, not reported as a timeout', { timeout: 30_000 }, async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const cmd = await c.nextCommand();
      await answerThenStall(c, () => c.reply(cmd, { status: 'running', running: true }));
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, commandTimeoutMs: BOUND_MS });
      try {
        const s = await client.execute<{ status: string }>('query-status');
        assert.equal(s.status, 'running');
      } finally {
        await client.close();
      }
    },
  );
});

test('an event that arrives while the loop is blocked past the wait is taken, not reported as a timeout', { timeout: 30_000 }, async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const cmd = await c.nextCommand(); // the client's signal that it is waiting now
      c.reply(cmd, {});
      await answerThenStall(c, () => c.event('STOP'));
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        const stop = client.waitForEvent('STOP', { timeoutMs: BOUND_MS });
        await client.execute('query-status');
        assert.equal((await stop).event, 'STOP');
      } finally {
        await client.close();
      }
    },
  );
});

test('the last answer of the connect (qmp_capabilities) arriving while the loop is blocked past the connect bound is taken, not reported as a timeout', { timeout: 30_000 }, async () => {
  await withFake(
    async (c) => {
      c.greet();
      const cmd = await c.nextCommand();
      assert.equal(cmd.execute, 'qmp_capabilities');
      await answerThenStall(c, () => c.reply(cmd, {}));
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, connectTimeoutMs: BOUND_MS });
      await client.close();
    },
  );
});
