import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBootSectorGuest } from '../../src/guest';
import {
  QmpClient,
  QmpError,
  SocketTransport,
  parseEndpoint,
  type QmpTransport,
  type TransportCapabilities,
  type TransportHandlers,
} from '../../src/qmp';
import { requireTools } from '../helpers/requirements';

const skip = requireTools('qemu-system-x86_64');

/**
 * A transport that, like libvirtd, reads QEMU's greeting and negotiates capabilities itself and then
 * passes every later message through: what the session sees over a libvirt-style monitor. It is a
 * real QEMU socket underneath, not a fake.
 */
class PreNegotiatedTransport implements QmpTransport {
  readonly capabilities: TransportCapabilities = { greeting: false, fdPassing: false };
  readonly endpoint: string;
  readonly consumed: string[] = [];

  constructor(private readonly inner: SocketTransport) {
    this.endpoint = `pre-negotiated:${inner.endpoint}`;
  }

  async connect(handlers: TransportHandlers): Promise<void> {
    let ready: () => void = () => undefined;
    const negotiated = new Promise<void>((resolve) => (ready = resolve));
    let phase: 'greeting' | 'reply' | 'through' = 'greeting';
    await this.inner.connect({
      onMessage: (text) => {
        if (phase === 'through') return handlers.onMessage(text);
        this.consumed.push(text);
        if (phase === 'greeting' && text.includes('"QMP"')) {
          phase = 'reply';
          this.inner.send('{"execute":"qmp_capabilities","id":"transport-1"}');
        } else if (phase === 'reply' && text.includes('"transport-1"')) {
          phase = 'through';
          ready();
        }
      },
      onClose: (reason) => handlers.onClose(reason),
    });
    await negotiated;
  }

  send(text: string, fds?: readonly number[]): void {
    this.inner.send(text, fds);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  destroy(): void {
    this.inner.destroy();
  }
}

test('a session over a transport without a greeting: version from query-version, capabilities unknown, commands and safety unchanged', { skip }, async () => {
  const qemu = await launchBootSectorGuest({ startPaused: true });
  let client: QmpClient | undefined;
  try {
    const transport = new PreNegotiatedTransport(new SocketTransport(parseEndpoint(qemu.endpoint)));
    client = await QmpClient.over(transport, { connectTimeoutMs: 10_000 });
    assert.equal(client.endpoint, `pre-negotiated:${qemu.endpoint}`);
    assert.ok(transport.consumed.some((l) => l.includes('"QMP"')), 'the transport consumed the greeting');
    assert.ok(client.greeting.version.qemu.major >= 7);
    assert.equal(client.greeting.capabilities, undefined);
    const status = await client.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'prelaunch');
    await assert.rejects(client.execute('system_reset'), /refusing QMP command "system_reset"/);
    const sent = client.transcript().filter((e) => e.dir === 'tx').map((e) => JSON.parse(e.line).execute as string);
    assert.deepEqual(sent, ['query-version', 'query-status']);
  } finally {
    await client?.close();
    await qemu.kill();
  }
});

test('file descriptors are refused before sending when the transport cannot pass them (the socket transport cannot)', { skip }, async () => {
  const qemu = await launchBootSectorGuest({ startPaused: true });
  const client = await QmpClient.connect(qemu.endpoint, { allow: ['getfd'], connectTimeoutMs: 10_000 });
  try {
    assert.equal(client.canPassFds, false);
    await assert.rejects(
      client.execute('getfd', { fdname: 'memory' }, { fds: [0] }),
      (e: unknown) => e instanceof QmpError && /cannot pass them; nothing sent/.test(e.message),
    );
    assert.equal(client.transcript().some((e) => e.dir === 'tx' && e.line.includes('getfd')), false);
    assert.equal((await client.execute<{ status: string }>('query-status')).status, 'prelaunch');
  } finally {
    await client.close();
    await qemu.kill();
  }
});
