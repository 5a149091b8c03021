/**
 * A kernel stack scanned for return addresses, the way the kernel's own fallback does it when it
 * cannot unwind (arch/x86/kernel/dumpstack.c show_trace_log_lvl: every word that is a kernel text
 * address, printed as "? name+off/size"). This is a scan, not an unwinder: a word that looks like a
 * return address may be a stale one from an earlier call. To cut the noise, a word counts only when
 * the instruction just before it is a call (x86-64: e8 rel32 or an ff /2 indirect call; arm64: BL or
 * BLR), i.e. when it could really be a return address.
 */
import { toHex } from '../../util/hex';
import type { SymbolHit, SymbolTable } from './symbols';

/** Linux THREAD_SIZE on x86-64 and arm64 (16 KiB without KASAN): a task stack never spans more. */
export const STACK_SCAN_BYTES = 16 * 1024;
/** x86-64 module area: MODULES_VADDR (__START_KERNEL_map + 1 GiB) to MODULES_END. */
const X86_MODULES = { start: 0xffff_ffff_c000_0000n, end: 0xffff_ffff_ff00_0000n };

export interface StackFrameGuess {
  /** Virtual address of the stack slot holding the value. */
  slot: bigint;
  value: bigint;
  /** The symbol, when the value is in the kernel image's text. */
  symbol?: SymbolHit;
  /** True for an address in the module area (modules' symbols are not in the kernel's kallsyms). */
  module?: boolean;
}

export interface StackScan {
  sp: bigint;
  /** Where the scan stopped (exclusive) and why. */
  end: bigint;
  stoppedBecause: string;
  frames: StackFrameGuess[];
  /** Words that pointed into text but did not follow a call instruction (skipped). */
  skipped: number;
}

/** Reads kernel-virtual memory; throws when the page is not mapped or not captured. */
export type ReadVirt = (virt: bigint, length: number) => Promise<Buffer>;

export async function scanKernelStack(
  arch: string,
  sp: bigint,
  read: ReadVirt,
  symbols: SymbolTable,
  options: { pacMask?: bigint; maxBytes?: number } = {},
): Promise<StackScan> {
  const maxBytes = options.maxBytes ?? STACK_SCAN_BYTES;
  const start = sp & ~7n;
  // A task stack is THREAD_SIZE aligned: scan to the end of the 16 KiB block holding sp.
  const blockEnd = (start | BigInt(STACK_SCAN_BYTES - 1)) + 1n;
  const limit = blockEnd - start > BigInt(maxBytes) ? start + BigInt(maxBytes) : blockEnd;
  const frames: StackFrameGuess[] = [];
  const code = new CodeReader(read);
  let skipped = 0;
  let at = start;
  let stoppedBecause = `end of the ${STACK_SCAN_BYTES / 1024} KiB stack block`;
  while (at < limit) {
    const pageEnd = (at | 0xfffn) + 1n;
    const chunkEnd = pageEnd < limit ? pageEnd : limit;
    let chunk: Buffer;
    try {
      chunk = await read(at, Number(chunkEnd - at));
    } catch (err) {
      stoppedBecause = `page ${toHex(at & ~0xfffn)} could not be read (${(err as Error).message})`;
      break;
    }
    for (let off = 0; off + 8 <= chunk.length; off += 8) {
      let value = chunk.readBigUInt64LE(off);
      if (arch === 'aarch64' && options.pacMask !== undefined && ((value >> 55n) & 1n) === 1n) value |= options.pacMask;
      const slot = at + BigInt(off);
      // Like the kernel's %pB: look up value - 1, so a call that is the last instruction of a
      // function (a noreturn call) is named after its caller, not the next symbol.
      const before = symbols.isText(value - 1n) ? symbols.lookup(value - 1n) : undefined;
      const symbol = before === undefined ? undefined : { ...before, offset: before.offset + 1n };
      const module = symbol === undefined && arch === 'x86_64' && value >= X86_MODULES.start && value < X86_MODULES.end;
      if (symbol === undefined && !module) continue;
      if (!(await code.followsCall(arch, value))) {
        skipped++;
        continue;
      }
      frames.push(module ? { slot, value, module: true } : { slot, value, symbol });
    }
    at = chunkEnd;
  }
  return { sp, end: at, stoppedBecause, frames, skipped };
}

/** Code bytes before candidate return addresses, read a page at a time and cached. */
class CodeReader {
  private readonly pages = new Map<bigint, Buffer | null>();
  constructor(private readonly read: ReadVirt) {}

  private async bytesBefore(addr: bigint, n: number): Promise<Buffer | undefined> {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      const a = addr - BigInt(n - i);
      const page = a & ~0xfffn;
      let data = this.pages.get(page);
      if (data === undefined) {
        data = await this.read(page, 4096).catch(() => null);
        if (this.pages.size > 256) this.pages.clear();
        this.pages.set(page, data);
      }
      if (data === null) return undefined;
      out[i] = data[Number(a - page)]!;
    }
    return out;
  }

  async followsCall(arch: string, ret: bigint): Promise<boolean> {
    if (arch === 'aarch64') {
      const b = await this.bytesBefore(ret, 4);
      if (b === undefined) return false;
      const insn = b.readUInt32LE(0);
      return (insn & 0xfc000000) >>> 0 === 0x94000000 || (insn & 0xfffffc1f) >>> 0 === 0xd63f0000 || (insn & 0xfffff800) >>> 0 === 0xd63f0800;
    }
    const b = await this.bytesBefore(ret, 7);
    if (b === undefined) return false;
    const modrmIsCall = (m: number, mod: number) => (m >> 6) === mod && ((m >> 3) & 7) === 2;
    return (
      b[2] === 0xe8 || // call rel32
      (b[5] === 0xff && modrmIsCall(b[6]!, 3)) || // call *%reg
      (b[4] === 0xff && modrmIsCall(b[5]!, 1)) || // call *disp8(%reg)
      (b[4] === 0xff && modrmIsCall(b[5]!, 0)) || // call *(%reg,...) with SIB, or REX + call *%reg
      (b[3] === 0xff && modrmIsCall(b[4]!, 1)) || // call *disp8(%reg,%idx) with SIB
      (b[1] === 0xff && (modrmIsCall(b[2]!, 0) || modrmIsCall(b[2]!, 2))) || // call *disp32(%rip) / *disp32(%reg)
      (b[0] === 0xff && modrmIsCall(b[1]!, 2)) // call *disp32(%reg,%idx)
    );
  }
}
