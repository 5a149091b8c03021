import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QmpClient, type QmpTransport, type TransportCapabilities, type TransportHandlers } from '../../src/qmp';
import { collectIdentity } from '../../src/capture/metadata';

/**
 * A scripted in-memory monitor answering the identity queries, with or without a greeting (a QEMU
 * socket greets; libvirtd reads the greeting itself, so the session learns the version with query-version).
 */
class ScriptedTransport implements QmpTransport {
  readonly endpoint = 'scripted:vm';
  readonly capabilities: TransportCapabilities;
  readonly sent: string[] = [];
  private handlers: TransportHandlers | undefined;

  constructor(greeting: boolean) {
    this.capabilities = { greeting, fdPassing: false };
  }

  async connect(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    if (this.capabilities.greeting) {
      queueMicrotask(() => handlers.onMessage(JSON.stringify({ QMP: { version: VERSION, capabilities: ['oob'] } })));
    }
  }

  send(text: string): void {
    const msg = JSON.parse(text) as { execute: string; id: string };
    this.sent.push(msg.execute);
    const answer = ANSWERS[msg.execute];
    const reply = answer === undefined ? { error: { class: 'CommandNotFound', desc: `no ${msg.execute}` }, id: msg.id } : { return: answer, id: msg.id };
    queueMicrotask(() => this.handlers?.onMessage(JSON.stringify(reply)));
  }

  async close(): Promise<void> {
    this.handlers?.onClose(undefined);
  }

  destroy(): void {}
}

const VERSION = { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2+dfsg-7+deb12u18' };
const ANSWERS: Record<string, unknown> = {
  qmp_capabilities: {},
  'query-version': VERSION,
  'query-target': { arch: 'x86_64' },
  'query-name': { name: 'web1' },
  'query-uuid': { UUID: '11111111-2222-3333-4444-555555555555' },
  'query-kvm': { enabled: false, present: true },
};

for (const greeting of [false, true]) {
  test(`capture identity asks query-version once per session (${greeting ? 'QMP socket: greeting, then query-version' : 'libvirt: the session\'s own query-version only'})`, async () => {
    const transport = new ScriptedTransport(greeting);
    const client = await QmpClient.over(transport);
    try {
      const warnings: string[] = [];
      const identity = await collectIdentity(client, warnings);
      assert.equal(identity.version, '7.2.22');
      assert.equal(identity.package, VERSION.package);
      assert.equal(identity.name, 'web1');
      assert.deepEqual(warnings, []);
      assert.equal(transport.sent.filter((c) => c === 'query-version').length, 1, `sent: ${transport.sent.join(', ')}`);
    } finally {
      await client.close();
    }
  });
}
