import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseDomainConfig,
  parseDomainEventLine,
  parseDomState,
  parseQemuEventLine,
  qmpStatusOf,
  readinessWarnings,
  splitLifecycle,
  virshFailure,
  isRemoteUri,
} from '../../src/libvirt';

const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'libvirt');

test('qemu-monitor-event lines: QEMU clock, event name, compact JSON data or <null>', () => {
  const panic = parseQemuEventLine(`event GUEST_PANICKED at 1796113394.121675 for domain 'vmpm-x1': {"action":"pause"}`);
  assert.deepEqual(panic, { event: 'GUEST_PANICKED', seconds: 1796113394, microseconds: 121675, domain: 'vmpm-x1', data: { action: 'pause' } });
  const stop = parseQemuEventLine(`event STOP at 1796113394.122093 for domain 'vmpm-x1': <null>`);
  assert.equal(stop?.event, 'STOP');
  assert.equal(stop?.data, undefined);
  // 64-bit values stay exact
  const dump = parseQemuEventLine(`event DUMP_COMPLETED at 1.000001 for domain 'd': {"result":{"total":18446744073709551615,"status":"completed"}}`);
  assert.equal((dump?.data?.result as { total: bigint }).total, 18446744073709551615n);
  assert.equal(parseQemuEventLine('events received: 3'), undefined);
});

test('virsh event lines: kind, domain, detail; lifecycle split into event and detail', () => {
  const e = parseDomainEventLine(`event 'lifecycle' for domain 'vmpm-lv1': Crashed Panicked`);
  assert.deepEqual(e, { kind: 'lifecycle', domain: 'vmpm-lv1', detail: 'Crashed Panicked' });
  assert.deepEqual(splitLifecycle(e!.detail), { event: 'Crashed', detail: 'Panicked' });
  assert.deepEqual(parseDomainEventLine(`event 'reboot' for domain 'a b'`), { kind: 'reboot', domain: 'a b', detail: '' });
  assert.equal(parseDomainEventLine('error: Disconnected from qemu:///system due to end of file'), undefined);
});

test('domstate --reason and its QMP run state', () => {
  assert.deepEqual(qmpStatusOf(parseDomState('crashed (panicked)\n\n')), { status: 'guest-panicked', running: false });
  assert.deepEqual(qmpStatusOf(parseDomState('paused (user)')), { status: 'paused', running: false });
  assert.deepEqual(qmpStatusOf(parseDomState('paused (I/O error)')), { status: 'io-error', running: false });
  assert.deepEqual(qmpStatusOf(parseDomState('running (booted)')), { status: 'running', running: true });
  assert.equal(qmpStatusOf(parseDomState('shut off (destroyed)')), null);
  assert.equal(parseDomState('shut off (destroyed)').state, 'shut off');
});

test('the reference domain XML reads as prepared; a bare one gets libvirt-worded warnings', () => {
  const xml = readFileSync(join(FIXTURES, 'domain.xml'), 'utf8');
  const c = parseDomainConfig(xml);
  assert.equal(c.type, 'qemu');
  assert.equal(c.arch, 'x86_64');
  assert.equal(c.onCrash, 'preserve');
  assert.deepEqual(c.panicModels, ['isa']);
  assert.equal(c.vmcoreinfo, true);
  assert.deepEqual(readinessWarnings(c), []);
  const bare = parseDomainConfig("<domain type='kvm'><os><type arch='aarch64'>hvm</type></os><on_crash>destroy</on_crash></domain>");
  const w = readinessWarnings(bare);
  assert.equal(w.length, 3);
  assert.match(w.join('\n'), /<panic model='isa'\/>/);
  assert.match(w.join('\n'), /<on_crash>destroy<\/on_crash>/);
});

test("virsh's error lines become one line naming the class of failure", () => {
  const nodom = virshFailure('virsh domstate x', { stderr: "error: failed to get domain 'x'\n", code: 1 }, 'qemu:///system');
  assert.equal(nodom.kind, 'no-domain');
  assert.equal(nodom.message, 'libvirt domain "x" not found on qemu:///system');
  const down = virshFailure(
    'virsh list',
    { stderr: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n", code: 1 },
    undefined,
  );
  assert.equal(down.kind, 'unreachable');
  assert.match(down.message, /^libvirtd is not running/);
  const perm = virshFailure('virsh list', { stderr: "error: failed to connect to the hypervisor\nerror: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'\n", code: 1 }, 'qemu:///system');
  assert.equal(perm.kind, 'permission');
  assert.ok(!perm.message.includes('\n'));
});

test('remote libvirt URIs are told apart from local ones (a remote libvirtd writes dumps on its own host)', () => {
  assert.equal(isRemoteUri('qemu+ssh://root@host1/system'), true);
  assert.equal(isRemoteUri('qemu+tls://[fd00::1]:16514/system'), true);
  assert.equal(isRemoteUri('qemu:///system'), false);
  assert.equal(isRemoteUri('qemu+unix:///system?socket=/run/libvirt/libvirt-sock'), false);
  assert.equal(isRemoteUri('qemu+ssh://localhost/system'), false);
});
