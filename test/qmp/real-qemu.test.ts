import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { launchBootSectorGuest, launchQemu, type LaunchedQemu } from '../../src/guest';
import {
  QmpClient,
  QmpCommandError,
  QmpGreetingError,
  QmpHmpError,
  QmpUnsafeCommandError,
  parseJson,
} from '../../src/qmp';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';

const skip = requireTools('qemu-system-x86_64');

/** A port the kernel just handed out (released again for QEMU to bind). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Runs `body` with a started QEMU and a connected client; both are always cleaned up. */
async function withQemu(
  launch: () => Promise<LaunchedQemu>,
  body: (qemu: LaunchedQemu, client: QmpClient) => Promise<void>,
  allow: string[] = [],
): Promise<void> {
  const qemu = await launch();
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.connect(qemu.endpoint, { allow, connectTimeoutMs: 10_000 });
    await body(qemu, client);
  } finally {
    await client?.close();
    await qemu.kill();
  }
}

const pausedGuest = (): Promise<LaunchedQemu> =>
  launchBootSectorGuest({ startPaused: true, name: 'vmpm-test', uuid: '11111111-2222-3333-4444-555555555555' });

test('real QEMU: greeting is read and capabilities negotiated', { skip }, async () => {
  await withQemu(pausedGuest, async (_qemu, client) => {
    assert.ok(client.greeting.version.qemu.major >= 7, JSON.stringify(client.greeting));
    assert.ok(Array.isArray(client.greeting.capabilities));
    const t = client.transcript();
    assert.match(t[0]!.line, /^\{"QMP"/);
    assert.match(t[1]!.line, /"execute":"qmp_capabilities"/);
    assert.match(t[2]!.line, /"return": \{\}/);
    // Commands are accepted only after negotiation, so a query proves it completed.
    assert.deepEqual(await client.execute('query-status'), { status: 'prelaunch', singlestep: false, running: false });
  });
});

test('real QEMU: queries return the launch configuration', { skip }, async () => {
  await withQemu(pausedGuest, async (_qemu, client) => {
    const version = await client.execute<{ qemu: { major: number; minor: number; micro: number } }>('query-version');
    assert.deepEqual(version.qemu, client.greeting.version.qemu);
    assert.deepEqual(await client.execute('query-name'), { name: 'vmpm-test' });
    assert.deepEqual(await client.execute('query-uuid'), { UUID: '11111111-2222-3333-4444-555555555555' });
    const mem = await client.execute<{ 'base-memory': number }>('query-memory-size-summary');
    assert.equal(mem['base-memory'], 64 * 1024 * 1024);
    const cpus = await client.execute<unknown[]>('query-cpus-fast');
    assert.equal(cpus.length, 1);
  });
});

test('real QEMU: stop pauses a running VM and the STOP event arrives', { skip }, async () => {
  // No disk: SeaBIOS finds nothing to boot and the VM just keeps running.
  await withQemu(
    () => launchQemu([], {}),
    async (_qemu, client) => {
      assert.equal((await client.execute<{ running: boolean }>('query-status')).running, true);
      assert.deepEqual(await client.execute('stop'), {});
      const stop = await client.waitForEvent('STOP', { timeoutMs: 5000 });
      assert.ok(stop.timestamp.seconds > 0);
      assert.deepEqual(await client.execute('query-status'), { status: 'paused', singlestep: false, running: false });
    },
  );
});

test('real QEMU: GUEST_PANICKED is received when the client connected before an explicitly allowed cont', { skip }, async () => {
  await withQemu(
    pausedGuest,
    async (_qemu, client) => {
      await client.execute('cont');
      const panic = await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 15_000 });
      assert.deepEqual(panic.data, { action: 'pause' });
      const status = await client.execute<{ status: string }>('query-status');
      assert.equal(status.status, 'guest-panicked');
    },
    ['cont'],
  );
});

test('real QEMU: an unknown command allowed through gives QmpCommandError CommandNotFound', { skip }, async () => {
  await withQemu(
    pausedGuest,
    async (_qemu, client) => {
      await assert.rejects(client.execute('no-such-command'), (err: unknown) => {
        assert.ok(err instanceof QmpCommandError);
        assert.equal(err.errorClass, 'CommandNotFound');
        assert.equal(err.command, 'no-such-command');
        assert.match(err.desc, /no-such-command/);
        return true;
      });
      // Bad arguments are command errors too, and the connection stays usable.
      await assert.rejects(client.execute('query-status', { bogus: 1 }), QmpCommandError);
      assert.equal((await client.execute<{ status: string }>('query-status')).status, 'prelaunch');
    },
    ['no-such-command'],
  );
});

test('real QEMU: a refused unsafe command is not sent and the VM state is unchanged', { skip }, async () => {
  await withQemu(pausedGuest, async (_qemu, client) => {
    await assert.rejects(client.execute('system_reset'), QmpUnsafeCommandError);
    await assert.rejects(client.execute('cont'), QmpUnsafeCommandError);
    await assert.rejects(client.hmp('o /b 0x505 1'), QmpUnsafeCommandError);
    assert.ok(!client.transcript().some((e) => /system_reset|"cont"|0x505/.test(e.line)));
    assert.equal((await client.execute<{ status: string }>('query-status')).status, 'prelaunch');
  });
});

test('real QEMU: HMP error text is raised as QmpHmpError, normal HMP output is returned', { skip }, async () => {
  await withQemu(pausedGuest, async (_qemu, client) => {
    await assert.rejects(client.hmp('info nosuchthing'), (err: unknown) => {
      assert.ok(err instanceof QmpHmpError);
      assert.match(err.message, /unknown command: 'info nosuchthing'/);
      return true;
    });
    await assert.rejects(client.hmp('info registers -z'), QmpHmpError);
    assert.match(await client.hmp('info status'), /^VM status: paused \(prelaunch\)/);
    assert.match(await client.hmp('info registers', { cpuIndex: 0 }), /CPU#0/);
  });
});

test('real QEMU: a second client on a held monitor gets a greeting timeout, not a hang', { skip }, async () => {
  await withQemu(pausedGuest, async (qemu) => {
    const started = Date.now();
    await assert.rejects(QmpClient.connect(qemu.endpoint, { connectTimeoutMs: 500 }), (err: unknown) => {
      assert.ok(err instanceof QmpGreetingError);
      assert.equal(err.timedOut, true);
      return true;
    });
    assert.ok(Date.now() - started < 3000);
  });
});

test('real QEMU: a tcp:HOST:PORT monitor works like a unix one', { skip }, async () => {
  const port = await freePort();
  const qemu = await launchBootSectorGuest({ startPaused: true, extraArgs: ['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`] });
  try {
    const client = await QmpClient.connect(`tcp:127.0.0.1:${port}`);
    try {
      assert.equal(client.endpoint, `tcp:127.0.0.1:${port}`);
      assert.equal((await client.execute<{ status: string }>('query-status')).status, 'prelaunch');
    } finally {
      await client.close();
    }
  } finally {
    await qemu.kill();
  }
});

test('real QEMU: vmpm qmp prints the real query-status as JSON', { skip }, async () => {
  const qemu = await pausedGuest();
  try {
    const r = await runCli(['qmp', '--qmp', qemu.endpoint, 'query-status']);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.deepEqual(parseJson(r.stdout), { status: 'prelaunch', singlestep: false, running: false });
    assert.match(r.stdout, /^\{\n {2}"status": "prelaunch",/);

    const hmp = await runCli(['qmp', '--qmp', qemu.qmpPath, '--hmp', 'info', 'status']);
    assert.equal(hmp.code, 0);
    assert.equal(hmp.stdout, 'VM status: paused (prelaunch)\n');

    const refused = await runCli(['qmp', '--qmp', qemu.endpoint, 'cont']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^vmpm: refusing QMP command "cont".*--allow cont/);
    assert.equal(refused.stderr.trim().split('\n').length, 1);

    const missing = await runCli(['qmp', '--qmp', qemu.endpoint, 'no-such-command', '--allow', 'no-such-command']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^vmpm: QMP command no-such-command failed: CommandNotFound/);

    const badJson = await runCli(['qmp', '--qmp', qemu.endpoint, 'query-status', '{nope']);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /^vmpm: query-status: arguments are not valid JSON/);

    const allowed = await runCli(['qmp', '--qmp', qemu.endpoint, '--allow', 'cont', 'cont']);
    assert.equal(allowed.code, 0);
    assert.equal(allowed.stdout, '{}\n');
  } finally {
    await qemu.kill();
  }
});

test('vmpm qmp against a missing socket fails with one line and exit 1', async () => {
  const r = await runCli(['qmp', '--qmp', '/nonexistent/vmpm/qmp.sock', 'query-status']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vmpm: no QMP socket at \/nonexistent\/vmpm\/qmp.sock/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('vmpm qmp with a bad endpoint scheme is a usage error (exit 2)', async () => {
  const r = await runCli(['qmp', '--qmp', 'serial:ttyS0', 'query-status']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^vmpm: unsupported QMP endpoint/);
});
