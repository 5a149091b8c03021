import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { domainConfig, domainInfo, domainState, LibvirtError, readinessWarnings, Virsh, versions, VirshStream, parseQemuEventLine } from '../../src/libvirt';
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
