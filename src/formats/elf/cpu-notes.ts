/**
 * Decoders for the per-vCPU notes QEMU writes into a `dump-guest-memory` ELF core (dump/dump.c,
 * target/i386/arch_dump.c, target/arm/arch_dump.c):
 *   - "CORE" NT_PRSTATUS (1): the Linux elf_prstatus layout of the dump's e_machine. x86 dumps taken
 *     while the first vCPU is not in long mode are EM_386 (i386 layout, 32-bit registers) even though
 *     the file is ELFCLASS64; long-mode ones are EM_X86_64.
 *   - "CORE" NT_PRFPREG (2), aarch64 only: V registers, FPSR, FPCR.
 *   - "QEMU" (type 0) on x86: QEMUCPUState v1, 0x1b8 bytes, full 64-bit state incl. segment caches,
 *     GDT/IDT and control registers. QEMU writes all NT_PRSTATUS notes first, then all QEMU notes,
 *     both in vCPU order; NT_PRSTATUS pr_pid is the vCPU index + 1.
 * Register names are the canonical ones of the bundle's CpuState (arch/cpu-state.ts), so they can be
 * compared with `info registers`. Every desc is read through the bounds-checked ByteReader.
 */
import type { Hex } from '../../util/hex';
import { toHex } from '../../util/hex';
import { ByteReader } from '../byte-reader';
import { FormatError } from '../errors';
import { EM_386, EM_AARCH64, EM_X86_64, NT_PRFPREG, NT_PRSTATUS, QEMU_NOTE_TYPE } from './constants';
import type { ElfNote } from './notes';

function notesError(problem: string, field: string, offset?: number): FormatError {
  return new FormatError({ format: 'ELF notes', problem, field, offset });
}

/** A note desc read through ByteReader, refused up front when shorter than its layout. */
class DescReader {
  private readonly r: ByteReader;
  constructor(desc: Buffer, littleEndian: boolean, what: string, minimumSize: number) {
    this.r = new ByteReader(desc, { format: 'ELF notes', littleEndian });
    if (desc.length < minimumSize) {
      throw this.r.error(`${what} note is ${desc.length} bytes, expected at least ${minimumSize}`, 0, what);
    }
  }
  u16(at: number): bigint { return BigInt(this.r.u16(at)); }
  u32(at: number): bigint { return BigInt(this.r.u32(at)); }
  u64(at: number): bigint { return this.r.u64(at); }
  hex16(at: number): Hex { return toHex(this.u16(at)); }
  hex32(at: number): Hex { return toHex(this.u32(at)); }
  hex64(at: number): Hex { return toHex(this.u64(at)); }
}

export type PrstatusLayout = 'x86_64' | 'i386' | 'aarch64';

export interface PrstatusRegisters {
  /** pr_pid: QEMU stores the vCPU index + 1. */
  pid: number;
  registers: Record<string, Hex>;
}

/** x86_64 user_regs_struct order (Linux), at offset 112 of elf_prstatus. */
const X86_64_PRSTATUS_REGS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs.selector', 'rflags', 'rsp', 'ss.selector', 'fs.base', 'gs.base', 'ds.selector',
  'es.selector', 'fs.selector', 'gs.selector',
] as const;

/** Decodes an NT_PRSTATUS desc in the layout of the dump's architecture. */
export function decodePrstatus(desc: Buffer, layout: PrstatusLayout, littleEndian = true): PrstatusRegisters {
  const registers: Record<string, Hex> = {};
  if (layout === 'x86_64') {
    const r = new DescReader(desc, littleEndian, 'x86_64 NT_PRSTATUS', 112 + 27 * 8);
    X86_64_PRSTATUS_REGS.forEach((name, i) => {
      if (name !== 'orig_rax') registers[name] = r.hex64(112 + i * 8);
    });
    return { pid: Number(r.u32(32)), registers };
  }
  if (layout === 'i386') {
    const r = new DescReader(desc, littleEndian, 'i386 NT_PRSTATUS', 72 + 68);
    const base = 72;
    ['rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rax'].forEach((name, i) => { registers[name] = r.hex32(base + i * 4); });
    registers['ds.selector'] = r.hex16(base + 28);
    registers['es.selector'] = r.hex16(base + 32);
    registers['fs.selector'] = r.hex16(base + 36);
    registers['gs.selector'] = r.hex16(base + 40);
    registers.rip = r.hex32(base + 48);
    registers['cs.selector'] = r.hex16(base + 52);
    registers.rflags = r.hex32(base + 56);
    registers.rsp = r.hex32(base + 60);
    registers['ss.selector'] = r.hex16(base + 64);
    return { pid: Number(r.u32(24)), registers };
  }
  const r = new DescReader(desc, littleEndian, 'aarch64 NT_PRSTATUS', 112 + 34 * 8);
  for (let i = 0; i < 31; i++) registers[`x${i}`] = r.hex64(112 + i * 8);
  registers.sp = r.hex64(112 + 31 * 8);
  registers.pc = r.hex64(112 + 32 * 8);
  registers.pstate = r.hex64(112 + 33 * 8);
  return { pid: Number(r.u32(32)), registers };
}

/** Decodes an aarch64 NT_PRFPREG desc: q0..q31, fpsr, fpcr. */
export function decodeAarch64FpRegs(desc: Buffer, littleEndian = true): Record<string, Hex> {
  const r = new DescReader(desc, littleEndian, 'aarch64 NT_PRFPREG', 32 * 16 + 8);
  const registers: Record<string, Hex> = {};
  for (let i = 0; i < 32; i++) {
    // QEMU stores each 128-bit V register as two 64-bit halves, low first, swapped for big-endian dumps.
    const first = r.u64(i * 16);
    const second = r.u64(i * 16 + 8);
    const [lo, hi] = littleEndian ? [first, second] : [second, first];
    registers[`q${i}`] = toHex((hi << 64n) | lo);
  }
  registers.fpsr = r.hex32(512);
  registers.fpcr = r.hex32(516);
  return registers;
}

const QEMU_CPU_STATE_V1_SIZE = 0x1b8;
const QEMU_NOTE_GPRS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
const QEMU_NOTE_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr', 'gdt', 'idt'] as const;

/**
 * Decodes QEMU's x86 "QEMU" note (QEMUCPUState v1). Segment flags are masked to 0x00ffff00, the bits
 * `info registers` shows (the cache also holds descriptor base bits there), so both sources agree.
 */
export function decodeQemuCpuState(desc: Buffer, littleEndian = true): { version: number; registers: Record<string, Hex> } {
  const head = new DescReader(desc, littleEndian, 'QEMU CPU state', 8);
  const version = Number(head.u32(0));
  const size = Number(head.u32(4));
  if (version !== 1) throw notesError(`QEMU CPU state note has version ${version}, only version 1 is understood`, 'version');
  if (size !== QEMU_CPU_STATE_V1_SIZE) {
    throw notesError(`QEMU CPU state note declares size 0x${size.toString(16)}, expected 0x${QEMU_CPU_STATE_V1_SIZE.toString(16)} for version 1`, 'size');
  }
  const r = new DescReader(desc, littleEndian, 'QEMU CPU state', QEMU_CPU_STATE_V1_SIZE);
  const registers: Record<string, Hex> = {};
  QEMU_NOTE_GPRS.forEach((name, i) => { registers[name] = r.hex64(8 + i * 8); });
  QEMU_NOTE_SEGMENTS.forEach((seg, i) => {
    const at = 152 + i * 24; // { u32 selector, u32 limit, u32 flags, u32 pad, u64 base }
    if (seg !== 'gdt' && seg !== 'idt') {
      registers[`${seg}.selector`] = toHex(r.u32(at) & 0xffffn);
      registers[`${seg}.flags`] = toHex(r.u32(at + 8) & 0x00ffff00n);
    }
    registers[`${seg}.base`] = r.hex64(at + 16);
    registers[`${seg}.limit`] = r.hex32(at + 4);
  });
  ['cr0', 'cr1', 'cr2', 'cr3', 'cr4'].forEach((name, i) => {
    if (name !== 'cr1') registers[name] = r.hex64(392 + i * 8);
  });
  registers.kernel_gs_base = r.hex64(432);
  return { version, registers };
}

export interface NoteCpu {
  /** vCPU index (pr_pid - 1, or the order of appearance when pid is 0). */
  index: number;
  /** Everything known, QEMU note values taking precedence (they are full 64-bit on x86). */
  registers: Record<string, Hex>;
  prstatus: Record<string, Hex>;
  qemu?: Record<string, Hex>;
  fp?: Record<string, Hex>;
}

/** The PRSTATUS layout for an ELF e_machine, or FormatError for architectures vmpm does not decode. */
export function prstatusLayoutFor(machine: number): PrstatusLayout {
  if (machine === EM_X86_64) return 'x86_64';
  if (machine === EM_386) return 'i386';
  if (machine === EM_AARCH64) return 'aarch64';
  throw notesError(`e_machine ${machine} is not decoded (supported: EM_386, EM_X86_64, EM_AARCH64)`, 'e_machine');
}

/** Groups the per-vCPU notes of a dump into register maps per vCPU, in vCPU order of appearance. */
export function cpuRegistersFromNotes(notes: readonly ElfNote[], machine: number, littleEndian = true): NoteCpu[] {
  const layout = prstatusLayoutFor(machine);
  const cpus: NoteCpu[] = [];
  let qemuNotes = 0;
  for (const note of notes) {
    if (note.name === 'CORE' && note.type === NT_PRSTATUS) {
      const { pid, registers } = decodePrstatus(note.desc, layout, littleEndian);
      cpus.push({ index: pid > 0 ? pid - 1 : cpus.length, registers: { ...registers }, prstatus: registers });
    } else if (note.name === 'CORE' && note.type === NT_PRFPREG && layout === 'aarch64') {
      const cpu = cpus[cpus.length - 1];
      if (cpu === undefined) throw notesError('NT_PRFPREG before any NT_PRSTATUS', 'type', note.offset);
      cpu.fp = decodeAarch64FpRegs(note.desc, littleEndian);
      Object.assign(cpu.registers, cpu.fp);
    } else if (note.name === 'QEMU' && note.type === QEMU_NOTE_TYPE && layout !== 'aarch64') {
      const cpu = cpus[qemuNotes++];
      if (cpu === undefined) throw notesError(`QEMU CPU state note #${qemuNotes} has no matching NT_PRSTATUS`, 'type', note.offset);
      cpu.qemu = decodeQemuCpuState(note.desc, littleEndian).registers;
      Object.assign(cpu.registers, cpu.qemu);
    }
  }
  return cpus;
}

/** Registers present in both maps whose values differ (e.g. `info registers` vs the dump's notes). */
export function compareRegisters(
  a: Record<string, Hex>,
  b: Record<string, Hex>,
): Array<{ name: string; a: Hex; b: Hex }> {
  const out: Array<{ name: string; a: Hex; b: Hex }> = [];
  for (const [name, value] of Object.entries(a)) {
    const other = b[name];
    if (other !== undefined && BigInt(other) !== BigInt(value)) out.push({ name, a: value, b: other });
  }
  return out;
}
