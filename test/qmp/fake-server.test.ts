import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  QmpClient,
  QmpCommandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpGreetingError,
  QmpHmpError,
  QmpNegotiationError,
  QmpProtocolError,
  QmpTimeoutError,
  QmpUnsafeCommandError,
  type QmpEvent,
} from '../../src/qmp';
import { withFake, type FakeQmpServer } from '../helpers/fake-qmp';

const commandsReceived = (server: FakeQmpServer): string[] => server.received.map((l) => (JSON.parse(l) as { execute: string }).execute);

test('an event sent before the greeting is buffered and replayed to a subscriber after connect', async () => {
  await withFake(
    async (c) => {
      c.event('GUEST_PANICKED', { action: 'pause' });
      await c.handshake();
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        assert.equal(client.greeting.version.qemu.major, 7);
        const seen: QmpEvent[] = [];
        client.onEvent((e) => seen.push(e));
        assert.equal(seen.length, 1);
        assert.equal(seen[0]!.event, 'GUEST_PANICKED');
        assert.deepEqual(seen[0]!.data, { action: 'pause' });
        assert.ok(seen[0]!.timestamp.seconds > 1_600_000_000, 'QEMU timestamp kept');
        assert.ok(seen[0]!.receivedAt instanceof Date);
        // waitForEvent sees the already-received event too, unless told not to.
        assert.equal((await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 100 })).event, 'GUEST_PANICKED');
        await assert.rejects(client.waitForEvent('GUEST_PANICKED', { timeoutMs: 50, includeBuffered: false }), QmpTimeoutError);
      } finally {
        await client.close();
      }
    },
  );
});

test('an event between qmp_capabilities and its reply is not taken for the reply', async () => {
  await withFake(
    async (c) => {
      c.greet();
      const cap = await c.nextCommand();
      c.event('STOP');
      c.reply(cap, {});
      const q = await c.nextCommand();
      c.reply(q, { status: 'paused', running: false });
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        assert.deepEqual(
          client.bufferedEvents().map((e) => e.event),
          ['STOP'],
        );
        assert.deepEqual(await client.execute('query-status'), { status: 'paused', running: false });
      } finally {
        await client.close();
      }
    },
  );
});

test('replies are matched by id, not by order', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const a = await c.nextCommand();
      const b = await c.nextCommand();
      c.reply(b, 'second');
      c.reply(a, 'first');
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        const [a, b] = await Promise.all([client.execute('query-name'), client.execute('query-uuid')]);
        assert.equal(a, 'first');
        assert.equal(b, 'second');
      } finally {
        await client.close();
      }
    },
  );
});

test('an id-less error fails the oldest pending command and the connection stays usable', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const a = await c.nextCommand();
      const b = await c.nextCommand();
      c.send({ error: { class: 'GenericError', desc: 'JSON parse error, expecting value' } });
      c.reply(b, 'b-ok');
      const d = await c.nextCommand();
      c.reply(d, 'd-ok');
      void a;
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        const first = client.execute('query-name');
        const second = client.execute('query-uuid');
        await assert.rejects(first, (err: unknown) => {
          assert.ok(err instanceof QmpCommandError);
          assert.equal(err.command, 'query-name');
          assert.equal(err.errorClass, 'GenericError');
          assert.match(err.desc, /JSON parse error/);
          return true;
        });
        assert.equal(await second, 'b-ok');
        assert.equal(client.closed, false);
        assert.equal(await client.execute('query-status'), 'd-ok');
      } finally {
        await client.close();
      }
    },
  );
});

test('a reply with an unknown id or without an id is dropped, not given to a pending call', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const a = await c.nextCommand();
      c.send({ return: 'stray', id: 'not-ours' });
      c.send({ return: 'no-id' });
      c.reply(a, 'mine');
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        assert.equal(await client.execute('query-name'), 'mine');
        assert.ok(client.transcript().some((e) => e.line.includes('not-ours')), 'dropped reply still in the transcript');
      } finally {
        await client.close();
      }
    },
  );
});

test('a disconnect mid-command fails every pending call at once', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      await c.nextCommand();
      await c.nextCommand();
      await c.nextCommand();
      c.socket.destroy();
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, commandTimeoutMs: 60_000 });
      let closeErr: Error | undefined | null = null;
      client.onClose((e) => (closeErr = e));
      const started = Date.now();
      const calls = [client.execute('query-status'), client.execute('query-name'), client.hmp('info status')];
      const results = await Promise.allSettled(calls);
      assert.ok(Date.now() - started < 2000, 'failed at once, not after the 60 s timeout');
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok((r as PromiseRejectedResult).reason instanceof QmpDisconnectedError);
      }
      assert.equal(client.closed, true);
      assert.ok(closeErr !== null && closeErr !== undefined, 'onClose told why');
      await assert.rejects(client.execute('query-status'), QmpDisconnectedError);
      await assert.rejects(client.waitForEvent('STOP', { timeoutMs: 5000 }), QmpDisconnectedError);
    },
  );
});

test('a never-answered command times out after its per-call timeout; a late reply is ignored', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const slow = await c.nextCommand();
      const next = await c.nextCommand(5000);
      c.reply(slow, 'late');
      c.reply(next, 'on time');
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, commandTimeoutMs: 60_000 });
      try {
        const started = Date.now();
        await assert.rejects(client.execute('query-name', undefined, { timeoutMs: 150 }), (err: unknown) => {
          assert.ok(err instanceof QmpTimeoutError);
          assert.equal(err.command, 'query-name');
          assert.equal(err.timeoutMs, 150);
          return true;
        });
        const elapsed = Date.now() - started;
        assert.ok(elapsed >= 140 && elapsed < 2000, `timed out after ${elapsed} ms`);
        assert.equal(await client.execute('query-status'), 'on time');
      } finally {
        await client.close();
      }
    },
  );
});

test('an over-long line closes the connection with QmpProtocolError without buffering it all', async () => {
  const total = 64 * 1024 * 1024;
  let written = 0;
  await withFake(
    async (c) => {
      await c.handshake();
      await c.nextCommand();
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      try {
        while (written < total) {
          await c.sendRaw(chunk);
          written += chunk.length;
        }
      } catch {
        // the client hung up: expected
      }
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, maxLineBytes: 256 * 1024 });
      const pending = client.execute('query-qmp-schema');
      await assert.rejects(pending, (err: unknown) => {
        assert.ok(err instanceof QmpProtocolError);
        assert.match(err.message, /longer than 262144 bytes/);
        return true;
      });
      assert.equal(client.closed, true);
      await server.done;
      assert.ok(written < total, `client stopped reading early (server wrote ${written} of ${total} bytes)`);
      await assert.rejects(client.execute('query-status'), QmpDisconnectedError);
    },
  );
});

test('invalid JSON from the server closes the connection with QmpProtocolError', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      await c.nextCommand();
      c.send('{"return": {}, "id": ');
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      let closeErr: Error | undefined;
      client.onClose((e) => (closeErr = e));
      await assert.rejects(client.execute('query-status'), (err: unknown) => {
        assert.ok(err instanceof QmpProtocolError);
        assert.match(err.message, /invalid JSON/);
        assert.equal(err.received, '{"return": {}, "id": ');
        return true;
      });
      assert.equal(client.closed, true);
      assert.ok(closeErr instanceof QmpProtocolError);
    },
  );
});

test('a monitor that accepts the connection but never greets fails with QmpGreetingError after connectTimeoutMs', async () => {
  await withFake(
    async (c) => {
      await c.closed;
    },
    async (server) => {
      const started = Date.now();
      await assert.rejects(QmpClient.connect(server.endpoint, { connectTimeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof QmpGreetingError);
        assert.equal(err.timedOut, true);
        assert.match(err.message, /no QMP greeting .* within 300 ms/);
        return true;
      });
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 2000, `gave up after ${elapsed} ms`);
    },
  );
});

test('a first message that is not a greeting is a QmpGreetingError', async () => {
  await withFake(
    async (c) => {
      c.send({ return: {} });
      await c.closed;
    },
    async (server) => {
      await assert.rejects(QmpClient.connect(server.endpoint, { connectTimeoutMs: 2000 }), QmpGreetingError);
    },
  );
});

test('a refused qmp_capabilities is a QmpNegotiationError', async () => {
  await withFake(
    async (c) => {
      c.greet();
      const cap = await c.nextCommand();
      c.send({ error: { class: 'GenericError', desc: 'nope' }, id: cap.id });
      await c.closed;
    },
    async (server) => {
      await assert.rejects(QmpClient.connect(server.endpoint, { checkReplyShapes: false }), (err: unknown) => {
        assert.ok(err instanceof QmpNegotiationError);
        assert.match(err.message, /GenericError: nope/);
        return true;
      });
    },
  );
});

test('a missing socket and a refused connection are QmpConnectError with the errno code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-qmp-test-'));
  try {
    await assert.rejects(QmpClient.connect(`unix:${join(dir, 'absent.sock')}`), (err: unknown) => {
      assert.ok(err instanceof QmpConnectError);
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /no QMP socket at/);
      return true;
    });
    // A socket file nobody listens on any more (QEMU died): ECONNREFUSED.
    const stale = join(dir, 'stale.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(stale, r));
    await new Promise<void>((r) => server.close(() => r()));
    const err = await QmpClient.connect(stale).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof QmpConnectError, String(err));
    // A regular file or directory where the socket should be: the message says so, the errno is kept.
    const plain = join(dir, 'plain.sock');
    writeFileSync(plain, 'x');
    for (const [path, what] of [[plain, 'a regular file'], [dir, 'a directory']] as const) {
      await assert.rejects(QmpClient.connect(path), (e: unknown) => {
        assert.ok(e instanceof QmpConnectError);
        assert.equal(e.code, 'ECONNREFUSED');
        assert.equal(e.message, `${path} is ${what}, not a socket (expected QEMU's -qmp unix:PATH,server=on socket)`);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('64-bit integers are sent and received exactly', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const cmd = await c.nextCommand();
      // Answer with literals JSON.parse would round; echo the raw request line back for inspection.
      c.send(`{"return": {"max": 18446744073709551615, "neg": -9223372036854775807, "small": 4096, "echo": ${JSON.stringify(cmd.line)}}, "id": ${JSON.stringify(cmd.id)}}`);
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        const r = await client.execute<{ max: bigint; neg: bigint; small: number; echo: string }>('memsave', {
          val: -140737488224256n,
          size: 4096,
          filename: '/tmp/x',
          big: 0xffff800000020000n,
        });
        assert.equal(r.max, 18446744073709551615n);
        assert.equal(r.neg, -9223372036854775807n);
        assert.equal(r.small, 4096);
        assert.match(r.echo, /"val":-140737488224256,/);
        assert.match(r.echo, /"big":18446603336221327360[,}]/);
      } finally {
        await client.close();
      }
    },
  );
});

test('refused unsafe commands never reach the socket; allowed ones do', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      for (;;) {
        const cmd = await c.nextCommand(10_000).catch(() => undefined);
        if (!cmd) return;
        c.reply(cmd, cmd.execute === 'human-monitor-command' ? '' : {});
      }
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, allow: ['inject-nmi', 'o'] });
      try {
        for (const command of ['cont', 'system_reset', 'quit', 'device_add', 'migrate', 'no-such-command']) {
          await assert.rejects(client.execute(command), (err: unknown) => {
            assert.ok(err instanceof QmpUnsafeCommandError);
            assert.equal(err.command, command);
            return true;
          });
        }
        for (const line of ['mce 0 1 0xb580000000000000 0 0x20000 0', 'cont', 'quit', 'system_reset']) {
          await assert.rejects(client.hmp(line), QmpUnsafeCommandError);
        }
        await assert.rejects(client.execute('human-monitor-command', { 'command-line': 'c' }), QmpUnsafeCommandError);
        // Always allowed, and explicitly allowed ones, go through.
        await client.execute('stop');
        await client.execute('query-status');
        await client.execute('x-query-ramblock');
        await client.execute('qom-get', { path: '/machine', property: 'type' });
        await client.execute('inject-nmi');
        await client.hmp('info registers');
        await client.hmp('o /b 0x505 1');
        await client.hmp('xp /4xw 0x20000');
        assert.deepEqual(commandsReceived(server), [
          'qmp_capabilities',
          'stop',
          'query-status',
          'x-query-ramblock',
          'qom-get',
          'inject-nmi',
          'human-monitor-command',
          'human-monitor-command',
          'human-monitor-command',
        ]);
        assert.ok(!server.received.some((l) => /cont|system_reset|quit|mce|device_add/.test(l)), server.received.join('\n'));
      } finally {
        await client.close();
      }
    },
  );
});

test('HMP error texts returned as success are raised as QmpHmpError; normal text is returned', async () => {
  const errorTexts = [
    "unknown command: 'info nosuchthing'\r\n",
    'Invalid MCE bank number\r\n',
    'registers: unsupported option -z\r\nTry "help info registers" for more information\r\n',
    "Parameter 'cpu-index' expects a CPU number\r\n",
    'Error: Device needs media, but drive is empty\r\n',
    'invalid char in expression\r\n',
    'Invalid parameter type for \'val\'\r\n',
    '00007ffffffffff0: Cannot access memory\r\n',
  ];
  const okTexts = ['VM status: paused (guest-panicked)\r\n', '', '0000000000020000: 0x4c504d51 0x502d4241\r\n'];
  await withFake(
    async (c) => {
      await c.handshake();
      for (const text of [...errorTexts, ...okTexts]) c.reply(await c.nextCommand(), text);
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        for (const text of errorTexts) {
          await assert.rejects(client.hmp('info status'), (err: unknown) => {
            assert.ok(err instanceof QmpHmpError, `${JSON.stringify(text)} -> ${String(err)}`);
            assert.equal(err.text, text);
            assert.equal(err.commandLine, 'info status');
            assert.ok(!err.message.includes('\n'), 'one-line message');
            return true;
          });
        }
        for (const text of okTexts) assert.equal(await client.hmp('info status'), text);
      } finally {
        await client.close();
      }
    },
  );
});

test('events are read promptly without listeners, bounded, and counted when dropped', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const cmd = await c.nextCommand();
      for (let i = 0; i < 5000; i++) c.event('RTC_CHANGE', { offset: i });
      c.reply(cmd, 'after-events');
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false, maxBufferedEvents: 1000 });
      try {
        assert.equal(await client.execute('query-status'), 'after-events');
        const buffered = client.bufferedEvents();
        assert.equal(buffered.length, 1000);
        assert.equal(client.droppedEvents(), 4000);
        assert.deepEqual(buffered[0]!.data, { offset: 4000 });
        assert.deepEqual(buffered[999]!.data, { offset: 4999 });
        // Subscribing without replay sees nothing old.
        const seen: string[] = [];
        client.onEvent((e) => seen.push(e.event), { replay: false });
        assert.equal(seen.length, 0);
      } finally {
        await client.close();
      }
    },
  );
});

test('the transcript records every line sent and received, verbatim, in order', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      const cmd = await c.nextCommand();
      c.event('STOP');
      c.reply(cmd, {});
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      try {
        await client.execute('stop');
        await client.waitForEvent('STOP', { timeoutMs: 1000 });
        const t = client.transcript();
        assert.deepEqual(
          t.map((e) => e.dir),
          ['rx', 'tx', 'rx', 'tx', 'rx', 'rx'],
        );
        assert.match(t[0]!.line, /^\{"QMP"/);
        assert.equal(t[3]!.line, server.received[1]);
        assert.match(t[4]!.line, /"event":"STOP"/);
        for (const e of t) assert.ok(!Number.isNaN(Date.parse(e.at)));
      } finally {
        await client.close();
      }
    },
  );
});

test('close() fails pending calls with QmpDisconnectedError and is idempotent', async () => {
  await withFake(
    async (c) => {
      await c.handshake();
      await c.nextCommand();
      await c.closed;
    },
    async (server) => {
      const client = await QmpClient.connect(server.endpoint, { checkReplyShapes: false });
      let reason: Error | undefined | null = null;
      client.onClose((e) => (reason = e));
      const pending = assert.rejects(client.execute('query-status'), QmpDisconnectedError);
      await new Promise((r) => setTimeout(r, 20));
      await client.close();
      await client.close();
      await pending;
      assert.equal(reason, undefined, 'closed by us: no error reported');
      assert.equal(client.closed, true);
    },
  );
});
