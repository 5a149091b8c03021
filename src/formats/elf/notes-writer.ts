/**
 * Encodes the per-vCPU ELF notes QEMU's dump-guest-memory writes (qemu target/i386/arch_dump.c,
 * target/arm/arch_dump.c), from vmpm's canonical register names (bundle/schema.ts CpuState):
 *   - "CORE" NT_PRSTATUS: Linux elf_prstatus of the dump's e_machine (x86_64: 336 bytes, registers
 *     at 112 in user_regs_struct order; i386: 144 bytes, registers at 72; aarch64: 392 bytes);
 *     pr_pid = vCPU index + 1 as QEMU writes it;
 *   - "CORE" NT_PRFPREG for aarch64 when the V registers are known (528 bytes);
 *   - "QEMU" (type 0) QEMUCPUState version 1 (440 bytes) on x86.
 * Registers a bundle does not hold are written as 0: the formats have no "absent" marker.
 */
import type { Hex } from '../../util/hex';
import { NT_PRFPREG, NT_PRSTATUS, QEMU_NOTE_TYPE } from './constants';
const QEMU_CPU_STATE_SIZE = 0x1b8;

type Regs = Readonly<Record<string, Hex>>;

const align4 = (n: number): number => (n + 3) & ~3;

/** One ELF note: {namesz, descsz, type}, the name with its NUL, the desc, both padded to 4 bytes. */
export function encodeNote(name: string, type: number, desc: Buffer): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  const out = Buffer.alloc(12 + align4(nameBytes.length) + align4(desc.length));
  out.writeUInt32LE(nameBytes.length, 0);
  out.writeUInt32LE(desc.length, 4);
  out.writeUInt32LE(type >>> 0, 8);
  nameBytes.copy(out, 12);
  desc.copy(out, 12 + align4(nameBytes.length));
  return out;
}

function value(regs: Regs, name: string, mask = (1n << 64n) - 1n): bigint {
  const v = regs[name];
  return v === undefined ? 0n : BigInt(v) & mask;
}

/** x86_64 user_regs_struct order (Linux arch/x86/include/asm/user_64.h). */
const X86_64_ORDER = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs.selector', 'rflags', 'rsp', 'ss.selector', 'fs.base', 'gs.base', 'ds.selector',
  'es.selector', 'fs.selector', 'gs.selector',
] as const;

export function encodePrstatusX86_64(index: number, regs: Regs): Buffer {
  const b = Buffer.alloc(336);
  b.writeUInt32LE(index + 1, 32);
  X86_64_ORDER.forEach((name, i) => {
    // orig_rax: QEMU writes 0; a bundle never has it.
    b.writeBigUInt64LE(name === 'orig_rax' ? 0n : value(regs, name), 112 + i * 8);
  });
  return b;
}

/** i386 user_regs_struct order (17 x u32). */
const I386_ORDER = [
  'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rax', 'ds.selector', 'es.selector', 'fs.selector', 'gs.selector',
  'orig_eax', 'rip', 'cs.selector', 'rflags', 'rsp', 'ss.selector',
] as const;

export function encodePrstatusI386(index: number, regs: Regs): Buffer {
  const b = Buffer.alloc(144);
  b.writeUInt32LE(index + 1, 24);
  I386_ORDER.forEach((name, i) => {
    b.writeUInt32LE(name === 'orig_eax' ? 0 : Number(value(regs, name, 0xffffffffn)), 72 + i * 4);
  });
  return b;
}

export function encodePrstatusAarch64(index: number, regs: Regs, fpValid: boolean): Buffer {
  const b = Buffer.alloc(392);
  b.writeUInt32LE(index + 1, 32);
  for (let i = 0; i < 31; i++) b.writeBigUInt64LE(value(regs, `x${i}`), 112 + i * 8);
  b.writeBigUInt64LE(value(regs, 'sp'), 112 + 31 * 8);
  b.writeBigUInt64LE(value(regs, 'pc'), 112 + 32 * 8);
  b.writeBigUInt64LE(value(regs, 'pstate'), 112 + 33 * 8);
  b.writeUInt32LE(fpValid ? 1 : 0, 384);
  return b;
}

/** aarch64 user_fpsimd_state: 32 x 128-bit V registers (low half first), fpsr, fpcr, padding. */
export function encodeFpregsAarch64(regs: Regs): Buffer {
  const b = Buffer.alloc(528);
  for (let i = 0; i < 32; i++) {
    const q = value(regs, `q${i}`, (1n << 128n) - 1n);
    b.writeBigUInt64LE(q & ((1n << 64n) - 1n), i * 16);
    b.writeBigUInt64LE(q >> 64n, i * 16 + 8);
  }
  b.writeUInt32LE(Number(value(regs, 'fpsr', 0xffffffffn)), 512);
  b.writeUInt32LE(Number(value(regs, 'fpcr', 0xffffffffn)), 516);
  return b;
}

const QEMU_GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'] as const;
const QEMU_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr', 'gdt', 'idt'] as const;

/** QEMUCPUState v1: version, size, GPRs, rip, rflags, ten segment caches, cr0-cr4, kernel_gs_base. */
export function encodeQemuCpuState(regs: Regs): Buffer {
  const b = Buffer.alloc(QEMU_CPU_STATE_SIZE);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(QEMU_CPU_STATE_SIZE, 4);
  QEMU_GPRS.forEach((name, i) => b.writeBigUInt64LE(value(regs, name), 8 + i * 8));
  QEMU_SEGMENTS.forEach((seg, i) => {
    const at = 152 + i * 24;
    b.writeUInt32LE(Number(value(regs, `${seg}.selector`, 0xffffn)), at);
    b.writeUInt32LE(Number(value(regs, `${seg}.limit`, 0xffffffffn)), at + 4);
    b.writeUInt32LE(Number(value(regs, `${seg}.flags`, 0xffffffffn)), at + 8);
    b.writeBigUInt64LE(value(regs, `${seg}.base`), at + 16);
  });
  ['cr0', 'cr1', 'cr2', 'cr3', 'cr4'].forEach((name, i) => b.writeBigUInt64LE(value(regs, name), 392 + i * 8));
  b.writeBigUInt64LE(value(regs, 'kernel_gs_base'), 432);
  return b;
}

export type NoteLayout = 'x86_64' | 'i386' | 'aarch64';

/**
 * The PT_NOTE contents for these vCPUs in QEMU's order: every NT_PRSTATUS (aarch64: each followed by
 * its NT_PRFPREG), then on x86 every QEMU note, then `extra` (the VMCOREINFO note) verbatim.
 */
export function encodeCpuNotes(layout: NoteLayout, cpus: ReadonlyArray<{ index: number; registers: Regs }>, extra: Buffer[] = []): Buffer {
  const parts: Buffer[] = [];
  for (const cpu of cpus) {
    if (layout === 'x86_64') parts.push(encodeNote('CORE', NT_PRSTATUS, encodePrstatusX86_64(cpu.index, cpu.registers)));
    else if (layout === 'i386') parts.push(encodeNote('CORE', NT_PRSTATUS, encodePrstatusI386(cpu.index, cpu.registers)));
    else {
      const fp = cpu.registers.q0 !== undefined;
      parts.push(encodeNote('CORE', NT_PRSTATUS, encodePrstatusAarch64(cpu.index, cpu.registers, fp)));
      if (fp) parts.push(encodeNote('CORE', NT_PRFPREG, encodeFpregsAarch64(cpu.registers)));
    }
  }
  if (layout !== 'aarch64') for (const cpu of cpus) parts.push(encodeNote('QEMU', QEMU_NOTE_TYPE, encodeQemuCpuState(cpu.registers)));
  return Buffer.concat([...parts, ...extra]);
}
