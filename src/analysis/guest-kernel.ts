/**
 * What the guest kernel itself said, for every command that shows a bundle: release, KASLR offset,
 * crash time, the panic line, the last messages before it, and the faults it reported (machine checks
 * decoded, I/O errors, lockups, OOM kills). Built once from the kernel log (guestos/linux); a bundle
 * without a Linux kernel gets `available: false` and the reason, never an exception.
 */
import { describeError, VmpmError } from '../util/errors';
import { toHex, type Hex } from '../util/hex';
import { describeVmcoreinfoSource, readKernelLog, vmcoreinfoArch } from '../guestos';
import { kernelFaults, type KernelFault, type MachineCheck } from '../guestos/linux/kernel-records';
import type { McStatus } from '../guestos/linux/mce';
import { formatTime, klogRecord, openBundleKernel, type KlogRecord } from './klog';
import type { AnalysisBundle } from './source';
import { withBundle } from './open';

export interface KernelFaultModel {
  kind: KernelFault['kind'];
  severity: KernelFault['severity'];
  summary: string;
  seq: number;
  /** Seconds since the guest booted, as dmesg prints it. */
  time: string;
  device?: string;
  lines: string[];
  mce?: MachineCheckView;
}

/**
 * The JSON view of a decoded MCi_STATUS: guestos/linux/mce.ts's McStatus with its numbers as hex (the
 * severity is the fault's own). Derived, so a field added to McStatus must be shown here too.
 */
export type McStatusView = Omit<McStatus, 'status' | 'mcaCode' | 'modelCode' | 'severity'> & { status: Hex; mcaCode: Hex; modelCode: Hex };

/** The JSON view of a machine check: kernel-records.ts's MachineCheck with the status decoded and numbers as hex. */
export type MachineCheckView = Pick<MachineCheck, 'cpu' | 'bank' | 'ripSymbol' | 'ripInexact' | 'verdict'> & { mcgStatus: Hex; rip?: Hex; addr?: Hex; misc?: Hex } & McStatusView;

export type GuestKernelFacts =
  | {
      available: true;
      release?: string;
      buildId?: string;
      arch?: string;
      /** KERNELOFFSET: the KASLR slide (0x0 when the kernel runs at its link address). */
      kaslrOffset?: Hex;
      /** CRASHTIME as ISO time (written by the kernel when it crashed). */
      crashTime?: string;
      vmcoreinfo: string;
      vmcoreinfoFrom: 'section' | 'ram' | 'other';
      records: number;
      skipped: number;
      /** The last "Kernel panic - not syncing: ..." record. */
      panic?: { line: string; reason: string; time: string; seq: number };
      /** The last messages up to and including the panic (or the end of the log). */
      lastMessages: KlogRecord[];
      faults: KernelFaultModel[];
      /** The whole log, for diff (not serialised by reports). */
      log: KlogRecord[];
    }
  | { available: false; reason: string };

const PANIC_PREFIX = 'Kernel panic - not syncing: ';

export async function loadGuestKernel(bundle: AnalysisBundle, options: { lastMessages?: number } = {}): Promise<GuestKernelFacts> {
  try {
    const kernel = await openBundleKernel(bundle);
    const info = kernel.info;
    const log = await readKernelLog(kernel);
    const records = log.records.map(klogRecord);
    let panicAt = -1;
    for (let i = records.length - 1; i >= 0; i--) {
      if (records[i]!.text.startsWith(PANIC_PREFIX)) {
        panicAt = i;
        break;
      }
    }
    const end = panicAt >= 0 ? panicAt + 1 : records.length;
    const n = options.lastMessages ?? 20;
    const panic = panicAt >= 0 ? records[panicAt]! : undefined;
    return {
      available: true,
      ...(info.osRelease ? { release: info.osRelease } : {}),
      ...(info.buildId ? { buildId: info.buildId } : {}),
      ...(vmcoreinfoArch(info) ? { arch: vmcoreinfoArch(info) } : {}),
      ...(info.kernelOffset !== undefined ? { kaslrOffset: toHex(info.kernelOffset) } : {}),
      ...(info.crashTime !== undefined ? { crashTime: new Date(info.crashTime * 1000).toISOString() } : {}),
      vmcoreinfo: describeVmcoreinfoSource(info.source),
      vmcoreinfoFrom: info.source.kind,
      records: records.length,
      skipped: log.skippedTotal,
      ...(panic ? { panic: { line: panic.text, reason: panic.text.slice(PANIC_PREFIX.length), time: panic.time, seq: panic.seq } } : {}),
      lastMessages: records.slice(Math.max(0, end - n), end),
      faults: kernelFaults(log.records).map(faultModel),
      log: records,
    };
  } catch (err) {
    if (err instanceof VmpmError) return { available: false, reason: describeError(err) };
    throw err;
  }
}

export function faultModel(f: KernelFault): KernelFaultModel {
  const m: KernelFaultModel = { kind: f.kind, severity: f.severity, summary: f.summary, seq: f.seq, time: formatTime(f.tsNsec), lines: f.lines, ...(f.device ? { device: f.device } : {}) };
  if (f.mce) m.mce = machineCheckView(f.mce);
  return m;
}

function machineCheckView(mc: MachineCheck): MachineCheckView {
  return {
    cpu: mc.cpu,
    bank: mc.bank,
    mcgStatus: toHex(mc.mcgStatus),
    ...mcStatusView(mc.status),
    ...(mc.rip !== undefined ? { rip: toHex(mc.rip) } : {}),
    ...(mc.ripSymbol ? { ripSymbol: mc.ripSymbol } : {}),
    ...(mc.ripInexact !== undefined ? { ripInexact: mc.ripInexact } : {}),
    ...(mc.addr !== undefined ? { addr: toHex(mc.addr) } : {}),
    ...(mc.misc !== undefined ? { misc: toHex(mc.misc) } : {}),
    ...(mc.verdict ? { verdict: mc.verdict } : {}),
  };
}

/** Field order as `vmpm errors --json` has always printed it: status, flags, the flag bits, codes, description. */
function mcStatusView(s: McStatus): McStatusView {
  return {
    status: toHex(s.status),
    flags: s.flags,
    val: s.val,
    over: s.over,
    uc: s.uc,
    en: s.en,
    miscv: s.miscv,
    addrv: s.addrv,
    pcc: s.pcc,
    s: s.s,
    ar: s.ar,
    mcaCode: toHex(s.mcaCode),
    modelCode: toHex(s.modelCode),
    description: s.description,
  };
}

/**
 * The guest kernel's panic line in a bundle file ("Kernel panic - not syncing: ..."), for watch's
 * notification: undefined when there is none, no Linux kernel, or finding it would take longer than
 * `budgetMs` (a notification must not wait on a RAM scan of a large guest without VMCOREINFO).
 */
export async function panicLineOf(path: string, budgetMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), budgetMs)));
  const lookup = withBundle(path, async (b) => {
    const facts = await loadGuestKernel(b, { lastMessages: 0 });
    return facts.available ? facts.panic?.line : undefined;
  }).catch(() => undefined);
  try {
    return await Promise.race([lookup, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The facts without the whole log: what info --json and report --format json carry. */
export type GuestKernelSummary = Exclude<GuestKernelFacts, { available: true }> | Omit<Extract<GuestKernelFacts, { available: true }>, 'log'>;

export function guestKernelSummary(facts: GuestKernelFacts): GuestKernelSummary {
  if (!facts.available) return facts;
  const { log: _log, ...rest } = facts;
  return rest;
}

/** One line for `info`: "Linux 6.1.0-57-amd64 (x86_64), KASLR offset 0x32600000, crashed at ...; VMCOREINFO from ...". */
export function guestKernelLine(facts: GuestKernelFacts): string {
  if (!facts.available) return `not found: ${facts.reason}`;
  const parts = [`Linux ${facts.release ?? '(release unknown)'}${facts.arch ? ` (${facts.arch})` : ''}`];
  if (facts.kaslrOffset !== undefined) parts.push(facts.kaslrOffset === '0x0' ? 'no KASLR offset' : `KASLR offset ${facts.kaslrOffset}`);
  if (facts.crashTime) parts.push(`crashed at ${facts.crashTime}`);
  parts.push(`${facts.records} log records${facts.skipped ? ` (${facts.skipped} unreadable)` : ''}`);
  return `${parts.join(', ')}; VMCOREINFO from ${facts.vmcoreinfo}`;
}
