/**
 * `vmpm klog` on real Linux guests (Debian kernel, busybox initramfs, TCG), one booted guest per
 * scenario shared by its assertions: the log rebuilt from memory must hold exactly what the kernel
 * printed (every serial-console line, same text and timestamp), and, for panics from NMI or
 * machine-check context, what never reached the console.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KlogModel } from '../../src/analysis/klog';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { guestBuildSkipReason } from './build-guest';
import { MCE_BANK, MCE_STATUS, scenario, type ScenarioOptions } from './scenario';
import type { ErrorsModel } from '../../src/analysis/timeline';
import type { KernelLogDiff } from '../../src/analysis/klog-diff';

const skip = requireTools('qemu-system-x86_64', 'dpkg-deb', 'xz') || guestBuildSkipReason();
const TIMEOUT = 180_000;

async function cli(args: string[]): Promise<{ stdout: string; stderr: string; ms: number }> {
  const t = performance.now();
  const r = await runCli(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr, ms: Math.round(performance.now() - t) };
}
const klogJson = async (bundle: string, ...more: string[]): Promise<KlogModel> => JSON.parse((await cli(['klog', bundle, '--json', ...more])).stdout) as KlogModel;

/** The kernel's console lines on the serial log: `[    3.133068] text` (the guest's own echo lines have no timestamp). */
function serialKernelLines(serial: string): string[] {
  return serial.replace(/\r/g, '').split('\n').filter((l) => /^\[\s*\d+\.\d{6}\] /.test(l));
}

function boot(options: ScenarioOptions, t: { diagnostic(s: string): void }) {
  return scenario({ ...options, log: (l) => t.diagnostic(l) });
}

describe('vmpm klog on a real Linux guest', { skip }, () => {
  it('sysrq panic (PVH vmlinux): every console line is a klog record with the same text and timestamp, marker before the panic', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'sysrq' }, t);
    t.diagnostic(`booted to panic in ${s.bootMs} ms, captured in ${s.captureMs} ms`);
    const text = await cli(['klog', s.bundle]);
    t.diagnostic(`klog: ${text.ms} ms; ${text.stderr.trim()}`);
    const klogLines = text.stdout.split('\n');
    const serialLines = serialKernelLines(s.serial);
    assert.ok(serialLines.length > 100, `the console shows the boot (${serialLines.length} lines)`);
    // In order: each console line is found after the previous one.
    let at = 0;
    for (const line of serialLines) {
      const found = klogLines.indexOf(line, at);
      assert.ok(found >= 0, `console line missing from klog (or out of order): ${JSON.stringify(line)}`);
      at = found + 1;
    }
    const m = await klogJson(s.bundle);
    assert.equal(m.layout, 'printk_ringbuffer');
    assert.equal(m.kernel.vmcoreinfoFrom, 'section');
    assert.equal(m.skippedTotal, 0, `no unreadable records: ${JSON.stringify(m.skipped)}`);
    const texts = m.records.map((r) => r.text);
    const marker = texts.indexOf(s.marker);
    assert.ok(marker >= 0, 'the marker /init wrote to /dev/kmsg');
    assert.ok(texts.indexOf('Kernel panic - not syncing: sysrq triggered crash', marker) > marker, 'the panic after the marker');
    // /dev/kmsg writes are facility user (1); "<3>" made the second one an error.
    const marked = m.records[marker]!;
    assert.equal(marked.facility, 1);
    const err = m.records.find((r) => r.text === `VMPM-LINUX-ERR-${s.id}`);
    assert.equal(err?.level, 3);
    assert.equal(err?.levelName, 'err');
    // Sequence numbers are consecutive: nothing was lost or skipped in a 128 KiB ring this young.
    m.records.forEach((r, i) => assert.equal(r.seq, i, 'seq'));

    const errs = await klogJson(s.bundle, '--level', 'err');
    assert.ok(errs.records.length >= 1 && errs.records.every((r) => r.level === 3));
    assert.ok(errs.records.some((r) => r.text === `VMPM-LINUX-ERR-${s.id}`));
    const tail = await klogJson(s.bundle, '--tail', '3');
    assert.deepEqual(tail.records.map((r) => r.seq), m.records.slice(-3).map((r) => r.seq));
    const raw = await cli(['klog', s.bundle, '--raw', '--tail', '400']);
    assert.ok(raw.stdout.split('\n').includes(`<11>[${timeField(err!.time)}] VMPM-LINUX-ERR-${s.id}`), 'raw priority = facility*8+level');
  });

  it('NMI panic (inject-nmi + unknown_nmi_panic): the panic is absent from the console and present in klog and the report', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'nmi', captureBefore: true }, t);
    const panic = 'Kernel panic - not syncing: NMI: Not continuing';
    assert.ok(!s.serial.includes('NMI: Not continuing'), 'the console never saw the NMI panic');
    const m = await klogJson(s.bundle);
    const texts = m.records.map((r) => r.text);
    assert.ok(texts.some((x) => /^Uhhuh\. NMI received for unknown reason/.test(x)), 'the NMI line');
    assert.ok(texts.indexOf(panic) > texts.indexOf(s.marker), 'the panic after the marker');
    // watch's notification and its --exec hook carry the panic line read back from the bundle.
    assert.equal(s.notification.panic, panic);
    assert.equal(s.execPanic, panic);
    // The Markdown report says why it died, with the NMI lines before the panic.
    const md = (await cli(['report', s.bundle, '--format', 'md'])).stdout;
    const part = md.slice(md.indexOf('## Guest kernel'), md.indexOf('## CPU state'));
    assert.match(part, /Panic reason: \*\*NMI: Not continuing\*\*/);
    assert.ok(part.includes(`] ${panic}`) && /\] Uhhuh\. NMI received for unknown reason/.test(part), part.slice(0, 3000));
    // diff against the capture taken (same boot) before the NMI: exactly the records logged since.
    const diff = JSON.parse((await cli(['diff', s.before!, s.bundle, '--json'])).stdout) as { kernelLog: KernelLogDiff };
    assert.equal(diff.kernelLog.compared && diff.kernelLog.sameBoot, true, JSON.stringify(diff.kernelLog).slice(0, 300));
    const fresh = diff.kernelLog.compared ? diff.kernelLog.newRecords.map((r) => r.text) : [];
    assert.ok(!fresh.includes(s.marker), 'the marker was logged before the first capture');
    assert.ok(fresh.some((x) => x.startsWith('Uhhuh. NMI')) && fresh.includes(panic), JSON.stringify(fresh.slice(0, 5)));
    const before = await klogJson(s.before!);
    assert.equal(fresh.length, m.records.length - before.records.length);
  });

  it('machine check (HMP mce): absent from the console; klog has the mce lines; errors has a critical decoded record following MEMORY_FAILURE', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'mce' }, t);
    assert.ok(!s.serial.includes('Hardware Error'), 'the console never saw the machine check');
    const m = await klogJson(s.bundle);
    const texts = m.records.map((r) => r.text);
    const head = texts.findIndex((x) => x === `mce: [Hardware Error]: CPU 0: Machine Check Exception: 5 Bank ${MCE_BANK}: ${MCE_STATUS.toString(16)}`);
    assert.ok(head > texts.indexOf(s.marker), `the mce line after the marker; tail: ${JSON.stringify(texts.slice(-8))}`);
    assert.ok(texts.indexOf('Kernel panic - not syncing: Fatal local machine check', head) > head);

    const errors = JSON.parse((await cli(['errors', s.bundle, '--json'])).stdout) as ErrorsModel;
    const mf = errors.records.find((r) => r.kind === 'memory-failure' && r.source === 'event');
    assert.ok(mf, `watch journaled MEMORY_FAILURE: ${JSON.stringify(errors.records.map((r) => r.summary))}`);
    assert.equal(mf.severity, 'warning', 'QMP alone cannot tell how bad it was');
    const mc = errors.records.find((r) => r.kind === 'machine-check');
    assert.ok(mc?.kernel?.mce, 'a machine-check record from the guest kernel');
    assert.equal(mc.source, 'guest-kernel');
    assert.equal(mc.severity, 'critical');
    const d = mc.kernel.mce;
    assert.equal(d.bank, MCE_BANK);
    assert.equal(d.cpu, 0);
    assert.equal(d.status, `0x${MCE_STATUS.toString(16)}`);
    assert.deepEqual(d.flags, ['VAL', 'UC', 'EN', 'PCC']);
    assert.equal(d.uc && d.pcc && d.val && d.en, true);
    assert.equal(d.addrv, false);
    assert.equal(d.mcaCode, '0x175');
    assert.equal(d.description, 'cache hierarchy error: L1 data, evict');
    // MCi_ADDR is read (and printed) only when ADDRV is set: the kernel gives the interrupted RIP instead.
    assert.equal(d.addr, undefined);
    assert.match(d.rip ?? '', /^0xffffffff[0-9a-f]{8}$/);
    assert.equal(d.verdict, 'Processor Context Corrupt');
    assert.equal(mc.follows, `${mf.time} ${mf.summary}`);
    assert.ok(errors.records.indexOf(mc) > errors.records.indexOf(mf), 'listed after the event it follows');
    const table = (await cli(['errors', s.bundle])).stdout;
    assert.match(table, /critical .*machine-check .*guest-kernel .*bank 1: status 0xb200000000000175 \(VAL UC EN PCC/);
  });

  it('more than 4 GiB of RAM with log_buf_len=4M: the ring lives above the PCI hole in the direct map and is read through the page tables', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'sysrq', memory: '5G', append: ['log_buf_len=4M'] }, t);
    const m = await klogJson(s.bundle);
    assert.equal(m.ring.textBytes, 4 << 20, 'the dynamic 4 MiB buffer, not the 128 KiB static one');
    assert.match(m.ring.textAddress, /^0xffff8/, 'a direct-map address');
    const tr = await cli(['translate', s.bundle, m.ring.textAddress, '--json']);
    const phys = BigInt((JSON.parse(tr.stdout) as { physical: string }).physical);
    assert.ok(phys >= 1n << 32n, `text ring at physical 0x${phys.toString(16)}, above 4 GiB`);
    assert.equal(m.skippedTotal, 0);
    const lines = (await cli(['klog', s.bundle])).stdout.split('\n');
    for (const line of serialKernelLines(s.serial)) assert.ok(lines.includes(line), `console line missing: ${line}`);
    assert.ok(m.records.some((r) => r.text === 'Kernel panic - not syncing: sysrq triggered crash'));
  });

  it('bzImage with KASLR: klog and info follow the randomized kernel', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'sysrq', kernel: 'bzImage' }, t);
    const m = await klogJson(s.bundle);
    assert.ok(m.records.some((r) => r.text === s.marker));
    assert.ok(m.records.some((r) => r.text === 'Kernel panic - not syncing: sysrq triggered crash'));
    const info = JSON.parse((await cli(['info', s.bundle, '--json', '--no-verify'])).stdout) as { guestKernel: { available: boolean; kaslrOffset?: string; panic?: { line: string } } };
    assert.equal(info.guestKernel.available, true);
    assert.notEqual(info.guestKernel.kaslrOffset, '0x0', 'KASLR moved the kernel');
    assert.equal(info.guestKernel.panic?.line, 'Kernel panic - not syncing: sysrq triggered crash');
  });

  it('no -device vmcoreinfo: klog finds the VMCOREINFO text in RAM, checks it against the kernel image and says so', { timeout: TIMEOUT }, async (t) => {
    const s = await boot({ trigger: 'sysrq', vmcoreinfo: false }, t);
    const sections = (await cli(['section', s.bundle])).stdout;
    assert.doesNotMatch(sections, /vmcoreinfo/);
    const text = await cli(['klog', s.bundle]);
    t.diagnostic(`klog with a RAM scan: ${text.ms} ms`);
    assert.match(text.stderr, /VMCOREINFO from guest RAM at physical 0x[0-9a-f]+ \(no vmcoreinfo section; found by scanning and checked against the kernel image\)/);
    const m = await klogJson(s.bundle);
    assert.equal(m.kernel.vmcoreinfoFrom, 'ram');
    assert.ok(m.records.some((r) => r.text === s.marker));
    assert.ok(m.records.some((r) => r.text === 'Kernel panic - not syncing: sysrq triggered crash'));
    const sym = await cli(['symbol', s.bundle, 'sysrq_handle_crash']);
    assert.match(sym.stdout, /sysrq_handle_crash/);
    // The symbol source names the RAM copy too, not a VMCOREINFO section the bundle does not have.
    assert.match(sym.stdout, /symbols from kallsyms in guest memory \(located by VMCOREINFO from guest RAM at physical 0x[0-9a-f]+ \(no vmcoreinfo section; found by scanning/);
    // The heuristic finds the same ring by shape alone, and labels itself.
    const scan = await cli(['klog', s.bundle, '--scan']);
    assert.match(scan.stdout, /^# HEURISTIC/);
    assert.ok(scan.stdout.includes(`] ${s.marker}`), 'the marker among the heuristic records');
  });
});

function timeField(time: string): string {
  const [a, b] = time.split('.');
  return `${a!.padStart(5)}.${b}`;
}
