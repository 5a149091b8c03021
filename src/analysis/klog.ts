/**
 * `vmpm klog`: the guest kernel's log rebuilt from a bundle's memory, as plain data. The records are
 * the kernel's own (guestos/linux/printk); this adds filtering and the words a reader needs (where the
 * VMCOREINFO came from, which layout, how many records were unreadable).
 */
import { UsageError } from '../util/errors';
import { toHex, type Hex } from '../util/hex';
import { describeVmcoreinfoSource, LOG_CONT, LOG_NEWLINE, openGuestKernel, readKernelLog, type GuestKernel, type KernelMemory, type PhysicalMemory, type PrintkLog, type PrintkRecord, type Vmcoreinfo } from '../guestos';
import { vcpuAddressSpace } from '../guestos/linux/address-space';
import { scanForLogText } from '../guestos/linux/printk-scan';
import { readVirtual } from '../guestos/linux/vmem';
import { SECTION, type CpusSection } from '../bundle/schema';
import type { AnalysisBundle } from './source';

export const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'] as const;

export interface KlogRecord {
  seq: number;
  /** Seconds.microseconds since boot, as dmesg prints it ("3.133068"). */
  time: string;
  /** Nanoseconds since boot as a decimal string (exceeds 2^53 after 104 days). */
  tsNsec: string;
  level: number;
  levelName: string;
  facility: number;
  /** Record flags by name: newline, cont (and prefix, nocons on older kernels). */
  flags: string[];
  caller?: string;
  subsystem?: string;
  device?: string;
  text: string;
}

export interface KlogModel {
  kernel: { release?: string; vmcoreinfo: string; vmcoreinfoFrom: 'section' | 'ram' | 'other' };
  layout: PrintkLog['layout'];
  ring: { textAddress: Hex; textBytes: number; descriptors?: number };
  /** Records read from the ring (before --level/--tail). */
  total: number;
  skipped: PrintkLog['skipped'];
  skippedTotal: number;
  firstSeq?: number;
  records: KlogRecord[];
}

export interface KlogOptions {
  /** Levels to keep, e.g. [3, 4]; undefined keeps all. */
  levels?: number[];
  tail?: number;
}

/** Parses --level: names or digits, comma-separated ("err,warn"), or "warn+" for that level and more severe. */
export function parseLevels(text: string): number[] {
  const out = new Set<number>();
  for (const word of text.split(',').map((w) => w.trim().toLowerCase())) {
    const plus = word.endsWith('+');
    const name = plus ? word.slice(0, -1) : word;
    const n = /^[0-7]$/.test(name) ? Number(name) : LEVEL_NAMES.indexOf(name === 'warning' ? 'warn' : name === 'error' ? 'err' : (name as (typeof LEVEL_NAMES)[number]));
    if (n < 0) throw new UsageError(`--level: unknown level ${JSON.stringify(word)} (use ${LEVEL_NAMES.join(', ')}, 0-7, or e.g. warn+)`);
    if (plus) for (let i = 0; i <= n; i++) out.add(i);
    else out.add(n);
  }
  return [...out].sort();
}

export function klogRecord(r: PrintkRecord): KlogRecord {
  const flags: string[] = [];
  if (r.flags & 1) flags.push('nocons');
  if (r.flags & LOG_NEWLINE) flags.push('newline');
  if (r.flags & 4) flags.push('prefix');
  if (r.flags & LOG_CONT) flags.push('cont');
  return {
    seq: r.seq,
    time: formatTime(r.tsNsec),
    tsNsec: r.tsNsec.toString(),
    level: r.level,
    levelName: LEVEL_NAMES[r.level] ?? String(r.level),
    facility: r.facility,
    flags,
    ...(r.caller ? { caller: r.caller } : {}),
    ...(r.subsystem ? { subsystem: r.subsystem } : {}),
    ...(r.device ? { device: r.device } : {}),
    text: r.text,
  };
}

/** "%5lu.%06lu" of the kernel's print_time(), without the padding (the text renderer pads). */
export function formatTime(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${((ns % 1_000_000_000n) / 1000n).toString().padStart(6, '0')}`;
}

/**
 * The bundle's guest kernel, with the captured vCPUs' page tables as the fallback for addresses the
 * kernel-image map does not cover (a log_buf_len= buffer in the x86_64 direct map).
 */
export async function openBundleKernel(bundle: AnalysisBundle): Promise<GuestKernel> {
  const cpus = bundle.has(SECTION.cpus) ? ((await bundle.json<CpusSection>(SECTION.cpus)).cpus ?? []) : [];
  const pageTables = async (physical: PhysicalMemory, info: Vmcoreinfo): Promise<KernelMemory | undefined> => {
    for (const cpu of cpus) {
      try {
        const space = vcpuAddressSpace(physical, cpu, info);
        const stext = info.symbolIfAny('_stext');
        if (stext !== undefined && (await space.translate(stext)).phys === undefined) continue;
        const arch = cpu.arch === 'aarch64' ? 'aarch64' : 'x86_64';
        return { arch, how: `page tables of ${space.description}`, read: (virt, length) => readVirtual(physical, space, virt, length) };
      } catch {
        // this vCPU has no usable tables (real mode, garbage CR3): try the next
      }
    }
    return undefined;
  };
  return openGuestKernel(bundle, { pageTables });
}

export async function buildKlog(bundle: AnalysisBundle, options: KlogOptions = {}): Promise<KlogModel> {
  const kernel = await openBundleKernel(bundle);
  const log = await readKernelLog(kernel);
  return klogModel(kernel.info.osRelease, describeVmcoreinfoSource(kernel.info.source), kernel.info.source.kind, log, options);
}

export function klogModel(release: string | undefined, vmcoreinfo: string, from: KlogModel['kernel']['vmcoreinfoFrom'], log: PrintkLog, options: KlogOptions = {}): KlogModel {
  let records = log.records;
  if (options.levels) {
    const keep = new Set(options.levels);
    records = records.filter((r) => keep.has(r.level));
  }
  if (options.tail !== undefined) records = options.tail === 0 ? [] : records.slice(-options.tail);
  return {
    kernel: { ...(release ? { release } : {}), vmcoreinfo, vmcoreinfoFrom: from },
    layout: log.layout,
    ring: { textAddress: toHex(log.ring.textAddress), textBytes: log.ring.textBytes, ...(log.ring.descriptors ? { descriptors: log.ring.descriptors } : {}) },
    total: log.records.length,
    skipped: log.skipped,
    skippedTotal: log.skippedTotal,
    ...(log.firstSeq !== undefined ? { firstSeq: log.firstSeq } : {}),
    records: records.map(klogRecord),
  };
}

/**
 * dmesg's lines: `[    3.133068] text`, one per line of a multi-line record (as the kernel's console
 * prints them); `raw` prefixes the syslog priority like `dmesg -r`: `<6>[    3.133068] text`.
 */
export function formatKlogLines(records: readonly KlogRecord[], options: { raw?: boolean } = {}): string {
  let out = '';
  for (const r of records) {
    const [secs, frac] = r.time.split('.');
    const prefix = `${options.raw ? `<${r.facility * 8 + r.level}>` : ''}[${secs!.padStart(5)}.${frac}] `;
    for (const line of r.text.split('\n')) out += `${prefix}${line}\n`;
  }
  return out;
}

export const SCAN_NOTE =
  'HEURISTIC (--scan): text found anywhere in RAM in the shape of printk ring records (consecutive ids); no timestamps or levels (they need VMCOREINFO), a text may carry up to 7 stray padding bytes, and a chain may be a stale copy';

export interface KlogScanModel {
  heuristic: true;
  note: string;
  pagesScanned: number;
  chains: number;
  truncated: boolean;
  records: Array<{ phys: Hex; id: Hex; text: string }>;
}

export async function buildKlogScan(bundle: AnalysisBundle, options: { tail?: number } = {}): Promise<KlogScanModel> {
  const scan = await scanForLogText(bundle);
  let records = scan.records;
  if (options.tail !== undefined) records = records.slice(-options.tail);
  return {
    heuristic: true,
    note: SCAN_NOTE,
    pagesScanned: scan.pagesScanned,
    chains: scan.chains,
    truncated: scan.truncated,
    records: records.map((r) => ({ phys: toHex(r.phys), id: toHex(r.id), text: r.text })),
  };
}
