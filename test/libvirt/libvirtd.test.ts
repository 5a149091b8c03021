import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { launchBootSectorGuest } from '../../src/guest';
import { parseEndpoint } from '../../src/qmp';
import { domainConfig, domainInfo, domainState, LibvirtError, readinessWarnings, Virsh, versions, VirshStream, parseQemuEventLine, qemuBehindEndpoint, LibvirtMonitor } from '../../src/libvirt';
import { createBootSectorDomain, requireLibvirt, startLibvirtd, waitForDomState, type LibvirtHost } from '../helpers/libvirtd';

const skip = requireLibvirt();
let host: LibvirtHost;

before(async () => {
  if (!skip) host = await startLibvirtd();
});
after(async () => {
  if (!skip) await host.stop();
});

test('a real libvirtd: domain facts, domstate --reason through a panic, QEMU events from qemu-monitor-event', { skip }, async () => {
  const dom = await createBootSectorDomain(host);
  try {
    const info = await domainInfo(host.virsh, dom.name);
    assert.equal(info.name, dom.name);
    assert.equal(info.uuid, dom.uuid);
    assert.ok(info.id !== null && info.id > 0);
    assert.equal(info.persistent, false);
    assert.deepEqual(await domainState(host.virsh, dom.name), { state: 'paused', reason: 'user', text: 'paused (user)' });
    const v = await versions(host.virsh);
    assert.match(v.libvirt ?? '', /^\d+\.\d+\.\d+$/);
    const qemu = /version (\d+\.\d+\.\d+)/.exec(execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }))?.[1];
    assert.equal(v.qemu, qemu);
    const config = await domainConfig(host.virsh, dom.name);
    assert.deepEqual(readinessWarnings(config), []);
    assert.equal(config.disks[0]?.errorPolicy, 'stop');

    const lines: string[] = [];
    const stream = new VirshStream(host.virsh, ['qemu-monitor-event', dom.name, '--loop'], (l) => lines.push(l));
    await new Promise((r) => setTimeout(r, 500)); // let virsh register its callback
    await host.virsh.run(['resume', dom.name]);
    assert.equal(await waitForDomState(host, dom.name, 'crashed (panicked)'), 'crashed (panicked)');
    const deadline = Date.now() + 5000;
    while (!lines.some((l) => l.includes('GUEST_PANICKED')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await stream.close();
    const events = lines.map(parseQemuEventLine);
    assert.ok(events.every((e) => e !== undefined), lines.join('\n'));
    const names = events.map((e) => e!.event);
    assert.deepEqual(names.slice(0, 3), ['RESUME', 'GUEST_PANICKED', 'STOP'], lines.join('\n'));
    assert.deepEqual(events[1]!.data, { action: 'pause' });
    assert.ok(Math.abs(events[1]!.seconds - Date.now() / 1000) < 60, 'QEMU clock, seconds since the epoch');
  } finally {
    await dom.destroy();
  }
});

test('a domain that does not exist and a libvirtd that is not there: one clear line each', { skip }, async () => {
  const fail = async (virsh: Virsh, args: string[]): Promise<LibvirtError> => {
    try {
      await virsh.run(args);
    } catch (err) {
      assert.ok(err instanceof LibvirtError, String(err));
      assert.ok(!err.message.includes('\n'), err.message);
      return err;
    }
    assert.fail(`virsh ${args.join(' ')} succeeded`);
  };
  const nodom = await fail(host.virsh, ['domstate', 'vmpm-no-such-domain', '--reason']);
  assert.equal(nodom.kind, 'no-domain');
  assert.equal(nodom.message, 'libvirt domain "vmpm-no-such-domain" not found on qemu:///system');
  const down = await fail(new Virsh({ uri: 'qemu+unix:///system?socket=/run/vmpm-no-libvirtd/libvirt-sock' }), ['list']);
  assert.equal(down.kind, 'unreachable');
  assert.match(down.message, /^libvirtd is not running \(no daemon at \/run\/vmpm-no-libvirtd\/libvirt-sock/);
});

test('a plain QMP socket is recognised as belonging to a libvirt-run QEMU; a QEMU vmpm started itself is not', { skip }, async () => {
  const dom = await createBootSectorDomain(host, { extraQmp: true });
  const plain = await launchBootSectorGuest({ startPaused: true });
  try {
    const lookup = qemuBehindEndpoint(parseEndpoint(dom.qmpPath!));
    assert.equal(lookup.found, true, JSON.stringify(lookup));
    if (!lookup.found) return;
    assert.equal(lookup.owner.guestName, dom.name);
    assert.equal(lookup.owner.libvirt?.domain, dom.name);
    assert.match(lookup.owner.libvirt?.evidence ?? '', /guest=/);
    assert.equal(readFileSync(`/run/libvirt/qemu/${dom.name}.pid`, 'utf8').trim(), String(lookup.owner.pid));
    const mine = qemuBehindEndpoint(parseEndpoint(plain.endpoint));
    assert.equal(mine.found, true);
    if (mine.found) {
      assert.equal(mine.owner.pid, plain.pid);
      assert.equal(mine.owner.libvirt, null);
    }
    assert.deepEqual(qemuBehindEndpoint(parseEndpoint('/tmp/vmpm-no-such.sock')), { found: false, why: 'no listening socket for it in /proc/net' });
  } finally {
    await plain.kill();
    await dom.destroy();
  }
});

test('LibvirtMonitor: QMP lines in, libvirt operations and read-only queries out, events in, closes when the domain stops', { skip }, async () => {
  const dom = await createBootSectorDomain(host);
  const exchanges: string[] = [];
  // Named by UUID: virsh's event lines name the domain by name, and must still be recognised.
  const monitor = await LibvirtMonitor.open({ domain: dom.uuid, uri: host.uri }, { record: (e) => exchanges.push(`${e.dir} ${e.line}`) });
  try {
    assert.equal(monitor.facts.uuid, dom.uuid);
    assert.equal(monitor.facts.name, dom.name);
    assert.equal(monitor.facts.stateAtOpen.text, 'paused (user)');
    const lines: Array<Record<string, unknown>> = [];
    monitor.onLine((l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const closed = new Promise<Error | undefined>((resolve) => monitor.onClose(resolve));
    const reply = async (id: number): Promise<Record<string, unknown>> => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const r = lines.find((l) => l.id === id);
        if (r) return r;
        if (Date.now() > deadline) assert.fail(`no reply ${id}: ${JSON.stringify(lines)}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    };
    monitor.send('{"execute":"query-status","id":1}');
    assert.deepEqual((await reply(1)).return, {
      status: 'paused',
      running: false,
      singlestep: false,
      libvirt: { state: 'paused', reason: 'user', domain: dom.uuid, uuid: dom.uuid, uri: host.uri, libvirtVersion: monitor.facts.libvirtVersion, qemuVersion: monitor.facts.qemuVersion, readiness: [] },
    });
    monitor.send('{"execute":"system_reset","id":2}');
    assert.match(JSON.stringify((await reply(2)).error), /does not send system_reset/);
    monitor.send('{"execute":"human-monitor-command","arguments":{"command-line":"info registers -a"},"id":3}');
    assert.match(String((await reply(3)).return), /CPU#0\r\nEAX=/);
    monitor.send('{"execute":"cont","id":4}');
    await reply(4);
    await waitForDomState(host, dom.name, 'crashed (panicked)');
    monitor.send('{"execute":"query-status","id":5}');
    assert.equal(((await reply(5)).return as { status: string }).status, 'guest-panicked');
    while (!lines.some((l) => l.event === 'LIBVIRT_LIFECYCLE' && JSON.stringify(l.data) === '{"event":"Crashed","detail":"Panicked"}')) {
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(lines.some((l) => l.event === 'GUEST_PANICKED'));
    // every call is in the transcript as the command an operator would type, and its reply
    assert.ok(exchanges.includes(`tx virsh -c qemu:///system resume ${dom.uuid}`), exchanges.join('\n'));
    assert.ok(exchanges.includes('rx crashed (panicked)'));
    await host.virsh.run(['destroy', dom.name]);
    assert.match((await closed)?.message ?? '', /stopped \(Stopped Destroyed\)/);
  } finally {
    await monitor.close();
    await dom.destroy();
  }
});
