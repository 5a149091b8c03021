/**
 * End to end against a real Linux kernel, the way an incident responder uses vmpm: a Debian kernel
 * with a busybox initramfs (built from Debian packages by ./build-guest.ts, cached between runs)
 * panics for real (sysrq-c), pvpanic raises GUEST_PANICKED, `vmpm watch` captures the guest, and
 * the real CLI must find in the bundle what only that boot could have left: the panic, the kernel's
 * registers, its VMCOREINFO, and a per-run marker line in the kernel log in RAM.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchQemu, type LaunchedQemu } from '../../src/guest';
import type { ErrorsModel } from '../../src/analysis/timeline';
import type { InfoModel } from '../../src/analysis/info';
import type { RegsModel } from '../../src/analysis/regs';
import type { SearchModel } from '../../src/analysis/search';
import type { KlogModel } from '../../src/analysis/klog';
import { Vmcoreinfo } from '../../src/guestos';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { extraQmp, startWatch, withClient, type WatchProcess } from '../watch/helpers';
import { buildLinuxGuest, guestBuildSkipReason } from './build-guest';

const skip = requireTools('qemu-system-x86_64', 'dpkg-deb', 'xz') || guestBuildSkipReason();

/** TCG boots this guest to the panic in 3-11 s on a shared 2-core machine; 3x headroom. */
const PANIC_TIMEOUT_MS = 45_000;
const KERNEL_SPACE = 0xffffffff80000000n;

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
function track<T extends LaunchedQemu | WatchProcess>(x: T): T {
  cleanups.push(() => x.kill());
  return x;
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await cli([...args, '--json'])) as T;

describe('vmpm on a real Linux guest (Debian kernel + busybox initramfs, TCG)', { skip }, () => {
  it('sysrq-c panic: watch captures it, and the bundle shows the panic, kernel registers, VMCOREINFO and the kernel log in RAM', { timeout: 150_000 }, async (t) => {
    const buildStart = performance.now();
    const guest = await buildLinuxGuest({ log: (line) => t.diagnostic(line) });
    t.diagnostic(`guest ${guest.kernelPackage.name} (${guest.kernelFormat}) ${guest.reused ? 'reused from' : 'built in'} ${guest.dir} in ${Math.round(performance.now() - buildStart)} ms`);

    const dir = mkdtempSync(join(tmpdir(), 'vmpm-linux-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const id = randomBytes(6).toString('hex');
    const marker = `VMPM-LINUX-MARKER-${id}`;
    const serialFile = join(dir, 'serial.log');
    const serial = (): string => {
      try {
        return readFileSync(serialFile, 'latin1');
      } catch {
        return '';
      }
    };
    const watchSock = join(dir, 'watch.sock');
    const runStart = performance.now();
    const qemu = track(
      await launchQemu(
        [
          '-kernel', guest.kernel,
          '-initrd', guest.initrd,
          // panic=0: the kernel waits after panic() instead of rebooting; printk_devkmsg=on: no rate limit on /dev/kmsg.
          '-append', `console=ttyS0 panic=0 printk_devkmsg=on guest_id=${id}`,
          '-no-reboot',
          '-device', 'pvpanic',
          '-device', 'vmcoreinfo',
        ],
        { memory: '256M', startPaused: true, name: `linux-${id}`, serialFile, extraArgs: extraQmp(watchSock) },
      ),
    );
    const watch = track(startWatch(['--qmp', `unix:${watchSock}`, '--out-dir', dir]));
    await watch.logged('connected to QEMU');
    await withClient(qemu.endpoint, (c) => c.execute('cont'));

    const n = await watch.notification(1, PANIC_TIMEOUT_MS).catch((err: Error) => {
      throw new Error(`${err.message}\n--- guest serial console (tail) ---\n${serial().slice(-3000)}\n--- QEMU stderr ---\n${qemu.stderr()}`);
    });
    t.diagnostic(`boot to captured bundle: ${Math.round(performance.now() - runStart)} ms (capture ${Math.round(n.captureMs ?? 0)} ms)`);
    assert.equal(n.trigger.event, 'GUEST_PANICKED');
    assert.equal(n.stoppedBy, 'qemu');
    assert.equal(n.failoverSafe, true);
    assert.ok(n.bundle, 'watch wrote a bundle');
    const bundle = n.bundle;
    // The guest ran its /init to the end: our modules loaded, and this boot's id was on its command line.
    // (/init's READY echo can be overtaken on the console by the panic it triggers, so the run's
    // marker is checked in the kernel log below, not READY on the serial console.)
    assert.match(serial(), new RegExp(`VMPM-LINUX-MARKER-${id}`));
    assert.doesNotMatch(serial(), /VMPM-INIT: (insmod|still alive)/);

    const verify = await json<{ ok: boolean }>(['verify', bundle]);
    assert.equal(verify.ok, true);

    const errors = await json<ErrorsModel>(['errors', bundle]);
    assert.ok(
      errors.records.some((r) => r.kind === 'guest-panicked' && r.source === 'event' && /GUEST_PANICKED/.test(r.summary)),
      `GUEST_PANICKED record in ${JSON.stringify(errors.records.map((r) => r.summary))}`,
    );
    const info = await json<InfoModel>(['info', bundle]);
    assert.equal(info.runState.after?.status, 'guest-panicked');
    assert.ok(info.sections.some((s) => s.name === 'vmcoreinfo'), 'vmcoreinfo section present');

    // The vCPU stopped inside the kernel: 64-bit long mode, RIP in the kernel's address range.
    const regs = await json<RegsModel>(['regs', bundle]);
    const cpu = regs.cpus[0];
    assert.ok(cpu, 'one vCPU captured');
    assert.equal(cpu.mode, 'long');
    const rip = BigInt(cpu.registers.rip ?? '0');
    assert.ok(rip >= KERNEL_SPACE, `RIP 0x${rip.toString(16)} is a kernel address`);

    // VMCOREINFO: the guest kernel's own description of itself, from -device vmcoreinfo + qemu_fw_cfg.ko.
    const section = await runCli(['section', bundle, 'vmcoreinfo']);
    assert.equal(section.code, 0, section.stderr);
    const vmcoreinfo = Vmcoreinfo.parse(section.stdout);
    assert.equal(vmcoreinfo.osRelease, guest.kernelPackage.release);
    assert.match(section.stdout, /^SYMBOL\(prb\)=[0-9a-f]+$/m);

    // The marker /init wrote to /dev/kmsg is a record of the kernel log rebuilt from RAM (not only a
    // copy in a shell's heap), and the formatted panic line follows it: it exists only after panic() ran
    // (rodata holds "sysrq triggered crash" and "Kernel panic - not syncing: %s" separately).
    const klog = await json<KlogModel>(['klog', bundle]);
    assert.equal(klog.kernel.release, guest.kernelPackage.release);
    const texts = klog.records.map((r) => r.text);
    const at = texts.indexOf(marker);
    assert.ok(at >= 0, `marker record in the kernel log; last records: ${JSON.stringify(texts.slice(-5))}`);
    assert.ok(texts.indexOf('Kernel panic - not syncing: sysrq triggered crash', at) > at, 'the panic line follows the marker');
    // The same bytes sit in guest RAM: `search` finds the panic line inside the text ring `klog` names.
    const panicHits = await json<SearchModel>(['search', bundle, '--text', 'Kernel panic - not syncing: sysrq triggered crash']);
    assert.ok(panicHits.matches.length > 0, 'the panic line is in RAM');

    t.diagnostic(`test run time without the build: ${Math.round(performance.now() - runStart)} ms`);
  });
});
