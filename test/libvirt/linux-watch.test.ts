/**
 * A real Linux guest run by libvirt the way issue 15 asks sites to prepare one (<panic model='isa'/>,
 * <vmcoreinfo state='on'/>, <on_crash>preserve</on_crash>, ACPI so the kernel finds pvpanic), panics
 * (sysrq-c) under `vmpm watch --libvirt`: the watcher captures it through libvirt, the domain stays
 * crashed, `vmpm state --libvirt` calls it failover-safe, and the kernel log in the bundle has this
 * boot's marker line.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KlogModel } from '../../src/analysis/klog';
import type { Manifest } from '../../src/bundle/schema';
import { runCli } from '../helpers/cli';
import { createDomain, domainName, requireLibvirt, startLibvirtd, type LibvirtHost } from '../helpers/libvirtd';
import { buildLinuxGuest, guestBuildSkipReason } from '../linux/build-guest';
import { withBundle } from '../capture/harness';
import { startWatch } from '../watch/helpers';

const skip = requireLibvirt() || guestBuildSkipReason();
/** TCG boots this guest to the panic in 3-11 s on a shared 2-core machine; then libvirt's dump of 256 MiB. */
const INCIDENT_TIMEOUT_MS = 90_000;

let host: LibvirtHost;
before(async () => {
  if (!skip) host = await startLibvirtd();
});
after(async () => {
  if (!skip) await host.stop();
});

test('a Linux guest panicking under watch --libvirt stays crashed and is captured, failover-safe', { skip, timeout: 240_000 }, async () => {
  const guest = await buildLinuxGuest();
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-libvirt-linux-'));
  const out = join(dir, 'out');
  mkdirSync(out);
  const id = randomBytes(6).toString('hex');
  const name = domainName('linux');
  const serial = join(dir, 'serial.log');
  const uuid = randomUUID();
  const xml = `<domain type='qemu'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${guest.kernel}</kernel>
    <initrd>${guest.initrd}</initrd>
    <cmdline>console=ttyS0 panic=0 printk_devkmsg=on guest_id=${id} scenario=panic</cmdline>
  </os>
  <features><acpi/><vmcoreinfo state='on'/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='${serial}'/><target port='0'/></serial>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
    <memballoon model='none'/>
  </devices>
</domain>
`;
  const dom = await createDomain(host, { name, uuid, dir, xml });
  const watch = startWatch(['--libvirt', name, '--connect', host.uri, '--out-dir', out]);
  try {
    await watch.logged('connected to QEMU');
    await host.virsh.run(['resume', name]);
    const n = await watch.notification(1, INCIDENT_TIMEOUT_MS).catch((err: unknown) => {
      throw new Error(`${String(err)}\nserial:\n${existsSync(serial) ? readFileSync(serial, 'latin1').slice(-2000) : '(none)'}`);
    });
    assert.equal(n.trigger.event, 'GUEST_PANICKED');
    assert.equal(n.stoppedBy, 'qemu'); // on_crash preserve: QEMU paused it, vmpm sent no stop
    assert.equal(n.failoverSafe, true, JSON.stringify(n));
    assert.equal(n.vm.endpoint, `libvirt:${name}@${host.uri}`);
    const bundle = n.bundle!;
    assert.equal((await host.virsh.run(['domstate', name, '--reason'])).trim(), 'crashed (panicked)');

    const m = await withBundle(bundle, (r) => r.json<Manifest>('manifest'));
    assert.equal(m.transport?.kind, 'libvirt');
    assert.equal(m.runState.before.libvirt, 'crashed (panicked)');
    assert.equal(m.runState.after.libvirt, 'crashed (panicked)');
    assert.deepEqual(m.actions.map((a) => a.action), ['dump-guest-memory']);
    const klog = await runCli(['klog', bundle, '--json']);
    assert.equal(klog.code, 0, klog.stderr);
    const model = JSON.parse(klog.stdout) as KlogModel;
    assert.equal(model.kernel.release, guest.kernelPackage.release);
    const texts = model.records.map((r) => r.text);
    assert.ok(texts.includes(`VMPM-LINUX-MARKER-${id}`), 'this boot\'s marker line is in the kernel log');
    assert.ok(texts.some((t) => t.startsWith('Kernel panic - not syncing')), texts.slice(-5).join('\n'));

    const state = await runCli(['state', '--libvirt', name, '--connect', host.uri, '--out-dir', out]);
    assert.equal(state.code, 10, state.stdout);
    watch.child.kill('SIGTERM');
    assert.equal((await watch.exited).code, 0);
  } finally {
    await watch.kill();
    await dom.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
