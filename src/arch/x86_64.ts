/**
 * x86 (QEMU's x86_64 target) `info registers` parsing, display groups and flag decoding.
 *
 * QEMU 7.2 prints one of two layouts per vCPU (target/i386/cpu-dump.c): with a 64-bit code segment
 * "RAX=<16 hex> ... R8 =... RIP=... RFL=..." and 16 XMM registers, otherwise "EAX=<8 hex> ... EIP=...
 * EFL=..." and 8 XMM registers. Both land in the same canonical 64-bit names (32-bit values
 * zero-extended). In compatibility mode (EFER.LMA set, 32-bit CS) QEMU itself only prints the low 32
 * bits, so the upper halves are unknown and recorded as zero; `raw` keeps the original text.
 */
import type { CpuState } from './cpu-state';
import { VmpmError } from '../util/errors';
import type { Hex } from '../util/hex';
import { fromHex } from '../util/hex';
import type { CpuBlock } from './lines';
import { firstLabel, hexValue, joinHexChunks, malformed, matchRepeated, parseHexFields } from './lines';
import type { BitName, FlagDecoding } from './flags';
import { decodeBits } from './flags';

/** Field name as printed -> canonical register name and width in bits. */
const SIMPLE_FIELDS: Record<string, { name: string; bits: number }> = {
  EAX: { name: 'rax', bits: 32 }, EBX: { name: 'rbx', bits: 32 }, ECX: { name: 'rcx', bits: 32 },
  EDX: { name: 'rdx', bits: 32 }, ESI: { name: 'rsi', bits: 32 }, EDI: { name: 'rdi', bits: 32 },
  EBP: { name: 'rbp', bits: 32 }, ESP: { name: 'rsp', bits: 32 }, EIP: { name: 'rip', bits: 32 },
  EFL: { name: 'rflags', bits: 32 },
  RAX: { name: 'rax', bits: 64 }, RBX: { name: 'rbx', bits: 64 }, RCX: { name: 'rcx', bits: 64 },
  RDX: { name: 'rdx', bits: 64 }, RSI: { name: 'rsi', bits: 64 }, RDI: { name: 'rdi', bits: 64 },
  RBP: { name: 'rbp', bits: 64 }, RSP: { name: 'rsp', bits: 64 }, RIP: { name: 'rip', bits: 64 },
  RFL: { name: 'rflags', bits: 64 },
  R8: { name: 'r8', bits: 64 }, R9: { name: 'r9', bits: 64 }, R10: { name: 'r10', bits: 64 },
  R11: { name: 'r11', bits: 64 }, R12: { name: 'r12', bits: 64 }, R13: { name: 'r13', bits: 64 },
  R14: { name: 'r14', bits: 64 }, R15: { name: 'r15', bits: 64 },
  CPL: { name: 'cpl', bits: 2 }, A20: { name: 'a20', bits: 1 }, SMM: { name: 'smm', bits: 1 },
  CR0: { name: 'cr0', bits: 64 }, CR2: { name: 'cr2', bits: 64 }, CR3: { name: 'cr3', bits: 64 },
  CR4: { name: 'cr4', bits: 64 },
  DR0: { name: 'dr0', bits: 64 }, DR1: { name: 'dr1', bits: 64 }, DR2: { name: 'dr2', bits: 64 },
  DR3: { name: 'dr3', bits: 64 }, DR6: { name: 'dr6', bits: 64 }, DR7: { name: 'dr7', bits: 64 },
  EFER: { name: 'efer', bits: 64 },
  FCW: { name: 'fcw', bits: 16 }, FSW: { name: 'fsw', bits: 16 }, FTW: { name: 'ftw', bits: 16 },
  MXCSR: { name: 'mxcsr', bits: 32 },
};
/** Fields of a known line that carry no register (HLT becomes `halted`, II is the interrupt shadow). */
const STATE_FIELDS = new Set(['HLT', 'II']);

const SEGMENTS: Record<string, string> = {
  ES: 'es', CS: 'cs', SS: 'ss', DS: 'ds', FS: 'fs', GS: 'gs', LDT: 'ldtr', TR: 'tr',
};

const SEGMENT_LINE = /^(ES|CS|SS|DS|FS|GS|LDT|TR) ?=([0-9a-f]{4}) ([0-9a-f]{8}|[0-9a-f]{16}) ([0-9a-f]{8}) ([0-9a-f]{8})(?: .*)?$/;
const TABLE_LINE = /^(GDT|IDT)= +([0-9a-f]{8}|[0-9a-f]{16}) ([0-9a-f]{8})$/;
const FPR_ITEM = /FPR([0-7])=([0-9a-f]{16}) ([0-9a-f]{4})/;
const XMM_ITEM = /XMM(\d\d)=([0-9a-f]{16}) ([0-9a-f]{16})/;
const YMM_ITEM = /YMM(\d\d)=([0-9a-f]{16}) ([0-9a-f]{16}) ([0-9a-f]{16}) ([0-9a-f]{16})/;
const ZMM_ITEM = /ZMM(\d\d)=((?:[0-9a-f]{16} ){7}[0-9a-f]{16})/;
const OPMASK_ITEM = /Opmask(\d\d)=([0-9a-f]{16})/;

const CR0_PE = 1n;
const EFER_LMA = 1n << 10n;

/** Parses one vCPU's block of x86 `info registers` output. */
export function parseX86Block(block: CpuBlock, arch: string): Omit<CpuState, 'qomPath' | 'threadId'> {
  const registers: Record<string, Hex> = {};
  let halted: boolean | undefined;
  block.lines.forEach((line, i) => {
    const lineNo = i + 2; // line 1 is the "CPU#n" header
    const where = () => `info registers: CPU#${block.index} line ${lineNo}`;
    const label = firstLabel(line);
    if (label === undefined) return;

    if (label in SEGMENTS) {
      const m = SEGMENT_LINE.exec(line);
      if (!m) throw malformed(block.index, lineNo, line, `"${label}=selector base limit flags"`);
      const seg = SEGMENTS[label]!;
      registers[`${seg}.selector`] = hexValue(m[2]!, 16, where);
      registers[`${seg}.base`] = hexValue(m[3]!, 64, where);
      registers[`${seg}.limit`] = hexValue(m[4]!, 32, where);
      registers[`${seg}.flags`] = hexValue(m[5]!, 32, where);
      return;
    }
    if (label === 'GDT' || label === 'IDT') {
      const m = TABLE_LINE.exec(line);
      if (!m) throw malformed(block.index, lineNo, line, `"${label}=     base limit"`);
      const table = label.toLowerCase();
      registers[`${table}.base`] = hexValue(m[2]!, 64, where);
      registers[`${table}.limit`] = hexValue(m[3]!, 32, where);
      return;
    }
    if (parseVectorLine(label, line, registers, (expected) => malformed(block.index, lineNo, line, expected), where)) return;
    if (label in SIMPLE_FIELDS || STATE_FIELDS.has(label)) {
      const fields = parseHexFields(line);
      if (!fields) throw malformed(block.index, lineNo, line, 'NAME=hex fields');
      for (const [name, digits] of fields) {
        const known = SIMPLE_FIELDS[name];
        if (known) registers[known.name] = hexValue(digits, known.bits, where);
        else if (name === 'HLT') halted = hexValue(digits, 1, where) === '0x1';
      }
    }
    // Anything else (new QEMU lines such as PDPTRs, CCS/CCO with -d) is kept only in `raw`.
  });

  for (const required of ['rip', 'rflags', 'cr0']) {
    if (registers[required] === undefined) {
      throw new VmpmError(`info registers: CPU#${block.index} has no ${required.toUpperCase()} value (output incomplete?)`);
    }
  }
  const state: Omit<CpuState, 'qomPath' | 'threadId'> = {
    index: block.index,
    arch,
    mode: x86Mode(registers),
    registers,
    raw: block.raw,
  };
  if (halted !== undefined) state.halted = halted;
  return state;
}

/**
 * The x87, SSE/AVX and AVX-512 lines (FPRn, XMMnn, YMMnn, ZMMnn, Opmasknn) into registers; a wider
 * register also fills the narrower views it contains (zmm → ymm → xmm). False when `label` is none of them.
 */
function parseVectorLine(label: string, line: string, registers: Record<string, Hex>, fail: (expected: string) => Error, where: () => string): boolean {
  if (/^FPR\d$/.test(label)) {
    const items = matchRepeated(line, FPR_ITEM);
    if (!items) throw fail('"FPRn=<16 hex> <4 hex>" pairs');
    // QEMU's FPRn is physical x87 register n (env->fpregs[n]); the 80-bit value is exponent:mantissa.
    for (const m of items) registers[`st${m[1]}`] = joinHexChunks([m[3]!, m[2]!]);
    return true;
  }
  if (/^XMM\d\d$/.test(label)) {
    const items = matchRepeated(line, XMM_ITEM);
    if (!items) throw fail('"XMMnn=<16 hex> <16 hex>" pairs');
    for (const m of items) registers[`xmm${Number(m[1])}`] = joinHexChunks([m[2]!, m[3]!]);
    return true;
  }
  if (/^YMM\d\d$/.test(label)) {
    const items = matchRepeated(line, YMM_ITEM);
    if (!items) throw fail('"YMMnn=" and four 16-hex quads');
    for (const m of items) {
      const n = Number(m[1]);
      registers[`ymm${n}`] = joinHexChunks([m[2]!, m[3]!, m[4]!, m[5]!]);
      registers[`xmm${n}`] = joinHexChunks([m[4]!, m[5]!]);
    }
    return true;
  }
  if (/^ZMM\d\d$/.test(label)) {
    const items = matchRepeated(line, ZMM_ITEM);
    if (!items) throw fail('"ZMMnn=" and eight 16-hex quads');
    for (const m of items) {
      const n = Number(m[1]);
      const quads = m[2]!.split(' ');
      registers[`zmm${n}`] = joinHexChunks(quads);
      registers[`ymm${n}`] = joinHexChunks(quads.slice(4));
      registers[`xmm${n}`] = joinHexChunks(quads.slice(6));
    }
    return true;
  }
  if (/^Opmask\d\d$/.test(label)) {
    const items = matchRepeated(line, OPMASK_ITEM);
    if (!items) throw fail('"Opmasknn=<16 hex>" fields');
    for (const m of items) registers[`k${Number(m[1])}`] = hexValue(m[2]!, 64, where);
    return true;
  }
  return false;
}

/** "real" | "protected" | "long", from CR0.PE and EFER.LMA in that order. */
export function x86Mode(registers: Record<string, Hex>): 'real' | 'protected' | 'long' {
  const cr0 = registers.cr0 === undefined ? 0n : fromHex(registers.cr0);
  if ((cr0 & CR0_PE) === 0n) return 'real';
  const efer = registers.efer === undefined ? 0n : fromHex(registers.efer);
  return (efer & EFER_LMA) !== 0n ? 'long' : 'protected';
}

const range = (prefix: string, from: number, to: number, suffix = ''): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}${suffix}`);

const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr'];

export const X86_GROUPS: Array<{ title: string; names: string[] }> = [
  {
    title: 'General',
    names: ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', ...range('r', 8, 15)],
  },
  { title: 'Instruction pointer & flags', names: ['rip', 'rflags', 'cpl', 'a20', 'smm'] },
  {
    title: 'Segments',
    names: SEGMENT_NAMES.flatMap((s) => ['selector', 'base', 'limit', 'flags'].map((f) => `${s}.${f}`)),
  },
  { title: 'Descriptor tables', names: ['gdt.base', 'gdt.limit', 'idt.base', 'idt.limit'] },
  {
    title: 'Control & debug',
    names: ['cr0', 'cr2', 'cr3', 'cr4', 'efer', 'dr0', 'dr1', 'dr2', 'dr3', 'dr6', 'dr7'],
  },
  {
    title: 'FPU & SSE',
    names: [
      'fcw', 'fsw', 'ftw', 'mxcsr', ...range('st', 0, 7), ...range('xmm', 0, 31), ...range('ymm', 0, 31),
      ...range('zmm', 0, 31), ...range('k', 0, 7),
    ],
  },
];

const RFLAGS_BITS: BitName[] = [
  [0, 'CF'], [2, 'PF'], [4, 'AF'], [6, 'ZF'], [7, 'SF'], [8, 'TF'], [9, 'IF'], [10, 'DF'], [11, 'OF'],
  [14, 'NT'], [16, 'RF'], [17, 'VM'], [18, 'AC'], [19, 'VIF'], [20, 'VIP'], [21, 'ID'],
];
const CR0_BITS: BitName[] = [
  [0, 'PE'], [1, 'MP'], [2, 'EM'], [3, 'TS'], [4, 'ET'], [5, 'NE'], [16, 'WP'], [18, 'AM'], [29, 'NW'],
  [30, 'CD'], [31, 'PG'],
];
const CR4_BITS: BitName[] = [
  [0, 'VME'], [1, 'PVI'], [2, 'TSD'], [3, 'DE'], [4, 'PSE'], [5, 'PAE'], [6, 'MCE'], [7, 'PGE'], [8, 'PCE'],
  [9, 'OSFXSR'], [10, 'OSXMMEXCPT'], [11, 'UMIP'], [12, 'LA57'], [13, 'VMXE'], [14, 'SMXE'],
  [16, 'FSGSBASE'], [17, 'PCIDE'], [18, 'OSXSAVE'], [20, 'SMEP'], [21, 'SMAP'], [22, 'PKE'], [23, 'CET'],
  [24, 'PKS'],
];
const EFER_BITS: BitName[] = [
  [0, 'SCE'], [8, 'LME'], [10, 'LMA'], [11, 'NXE'], [12, 'SVME'], [13, 'LMSLE'], [14, 'FFXSR'], [15, 'TCE'],
];

/** Decodes RFLAGS, CR0, CR4 and EFER of an x86 vCPU (those present). */
export function decodeX86Flags(cpu: Pick<CpuState, 'registers'>): FlagDecoding[] {
  const out: FlagDecoding[] = [];
  const r = cpu.registers;
  if (r.rflags !== undefined) {
    const value = fromHex(r.rflags);
    const iopl = Number((value >> 12n) & 3n);
    // Bit 1 always reads as 1 and IOPL is a 2-bit field: neither is an "unknown bit".
    const d = decodeBits('rflags', value, RFLAGS_BITS, (1n << 1n) | (3n << 12n));
    if (iopl !== 0) d.set.push(`IOPL=${iopl}`);
    d.text = [...d.set.filter((s) => !s.startsWith('IOPL=')), `IOPL=${iopl}`].join(' ');
    out.push(d);
  }
  if (r.cr0 !== undefined) out.push(decodeBits('cr0', fromHex(r.cr0), CR0_BITS));
  if (r.cr4 !== undefined) out.push(decodeBits('cr4', fromHex(r.cr4), CR4_BITS));
  if (r.efer !== undefined) out.push(decodeBits('efer', fromHex(r.efer), EFER_BITS));
  return out;
}

