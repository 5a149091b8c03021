/**
 * `vmpm stack FILE [--cpu N]`: each vCPU's kernel stack scanned from its stack pointer for return
 * addresses into kernel text, printed like the kernel's unreliable trace ("? name+off/size"). A scan,
 * not an unwinder: see guestos/linux/stack-scan.ts. `buildGuestStacks` is the entry point the
 * report uses; it never throws for a bundle that simply has no kernel to show.
 */
import { describeError } from '../util/errors';
import { toHex, type Hex } from '../util/hex';
import type { CpuState } from '../bundle/schema';
import { scanKernelStack, STACK_SCAN_BYTES } from '../guestos/linux/stack-scan';
import { formatSymbol } from '../guestos/linux/symbols';
import { readVirtual } from '../guestos/linux/vmem';
import { openKernelView, type KernelView, type KernelViewOptions } from './kernel';
import { describeUnsymbolized, symbolSourceModel, type SymbolSourceModel } from './symbol';
import type { AnalysisBundle } from './source';

export const STACK_SCAN_NOTE = `stack scan, not an unwinder: words on the kernel stack (up to ${STACK_SCAN_BYTES / 1024} KiB from the stack pointer) that point just after a call instruction in kernel text; like the kernel's "?" entries, some may be stale`;

export interface StackFrameModel {
  slot: Hex;
  value: Hex;
  /** "? name+0x16/0x20" or "? 0xffffffffc04a7230 [module]". */
  text: string;
  symbol?: string;
  module?: boolean;
}

export interface StackCpuModel {
  index: number;
  ip?: Hex;
  /** The instruction pointer symbolized ("sysrq_handle_crash+0x16/0x20"), or why not. */
  ipSymbol?: string;
  ipNote?: string;
  sp?: Hex;
  scannedTo?: Hex;
  stoppedBecause?: string;
  frames: StackFrameModel[];
  skipped?: number;
  /** Why this vCPU has no scan (user mode, no page tables ...). */
  error?: string;
}

export interface StackModel {
  note: string;
  symbols?: SymbolSourceModel;
  cpus: StackCpuModel[];
  /** Why there is no scan at all (no VMCOREINFO, no symbols ...). */
  error?: string;
}

export async function buildStack(view: KernelView, cpu?: number): Promise<StackModel> {
  const selected = cpu === undefined ? view.cpus : [view.cpu(cpu)];
  const loaded = await view.symbols();
  const cpus: StackCpuModel[] = [];
  for (const c of selected) cpus.push(await scanCpu(view, c));
  return { note: STACK_SCAN_NOTE, symbols: symbolSourceModel(loaded), cpus };
}

/** For the report: every vCPU's symbolized IP and stack scan, or one line saying why there is none. */
export async function buildGuestStacks(bundle: AnalysisBundle, options: KernelViewOptions = {}): Promise<StackModel> {
  try {
    return await buildStack(await openKernelView(bundle, options));
  } catch (err) {
    return { note: STACK_SCAN_NOTE, cpus: [], error: describeError(err) };
  }
}

function reg(c: CpuState, name: string): bigint | undefined {
  const v = c.registers[name];
  return v !== undefined && /^0x[0-9a-fA-F]{1,16}$/.test(v) ? BigInt(v) : undefined;
}

/** The kernel's privilege check: x86 CPL 0 (from cpl or cs.selector), arm64 EL1 or higher. */
function inKernelMode(c: CpuState): boolean | undefined {
  if (c.arch === 'x86_64') {
    const cpl = reg(c, 'cpl') ?? (reg(c, 'cs.selector') === undefined ? undefined : reg(c, 'cs.selector')! & 3n);
    return cpl === undefined ? undefined : cpl === 0n;
  }
  if (c.arch === 'aarch64') return c.exceptionLevel === undefined ? undefined : c.exceptionLevel >= 1;
  return undefined;
}

async function scanCpu(view: KernelView, c: CpuState): Promise<StackCpuModel> {
  const loaded = await view.symbols();
  const table = loaded.table;
  const ip = reg(c, c.arch === 'aarch64' ? 'pc' : 'rip');
  const sp = reg(c, c.arch === 'aarch64' ? 'sp' : 'rsp');
  const out: StackCpuModel = { index: c.index, frames: [] };
  if (ip !== undefined) {
    out.ip = toHex(ip);
    const hit = table.lookup(ip);
    if (hit) out.ipSymbol = formatSymbol(hit);
    else out.ipNote = describeUnsymbolized(ip, table.start, table.end, c.arch);
  }
  if (sp === undefined) return { ...out, error: 'no stack pointer captured' };
  out.sp = toHex(sp);
  if (inKernelMode(c) === false) return { ...out, error: 'the vCPU was in user mode: its stack pointer is a user stack, not a kernel stack' };
  try {
    const space = view.space(c.index);
    const pacMask = c.arch === 'aarch64' ? view.vmcoreinfo?.numberIfAny('KERNELPACMASK') : undefined;
    const scan = await scanKernelStack(c.arch, sp, (virt, length) => readVirtual(view.memory, space, virt, length), table, pacMask === undefined ? {} : { pacMask: pacMask & ((1n << 64n) - 1n) });
    out.scannedTo = toHex(scan.end);
    out.stoppedBecause = scan.stoppedBecause;
    out.skipped = scan.skipped;
    out.frames = scan.frames.map((f) => {
      const symbol = f.symbol ? formatSymbol(f.symbol) : undefined;
      const frame: StackFrameModel = { slot: toHex(f.slot), value: toHex(f.value), text: symbol ? `? ${symbol}` : `? ${toHex(f.value)} [module]` };
      if (symbol) frame.symbol = symbol;
      if (f.module) frame.module = true;
      return frame;
    });
  } catch (err) {
    out.error = describeError(err);
  }
  return out;
}
