/**
 * Per-architecture register parsing and decoding. Pure functions: text in, `CpuState` out.
 * Supported: x86_64 (also i386 output) and aarch64. Other targets keep the raw text per vCPU with an
 * empty register map, so a capture of an unsupported guest still records what QEMU said.
 */
import type { CpuState } from './cpu-state';
import { parseAarch64Block, AARCH64_GROUPS, decodeAarch64Flags } from './aarch64';
import type { FlagDecoding } from './flags';
import { splitCpuBlocks } from './lines';
import { parseX86Block, X86_GROUPS, decodeX86Flags, x86Mode } from './x86_64';

export type { FlagDecoding } from './flags';
export { x86Mode };

/** A parsed vCPU as `info registers` shows it (capture adds qomPath and threadId from query-cpus-fast). */
export type ParsedCpuState = Omit<CpuState, 'qomPath' | 'threadId'>;

export interface RegisterGroup {
  title: string;
  names: string[];
}

function family(arch: string): 'x86' | 'arm' | 'other' {
  if (arch === 'x86_64' || arch === 'i386' || arch === 'x86') return 'x86';
  if (arch === 'aarch64' || arch === 'arm') return 'arm';
  return 'other';
}

/**
 * Parses QEMU 7.2 HMP `info registers [-a]` output into one state per vCPU, in the order printed.
 * `arch` is the query-target arch. Throws VmpmError naming the line on malformed input.
 */
export function parseInfoRegisters(text: string, arch: 'x86_64' | 'aarch64' | string): ParsedCpuState[] {
  const blocks = splitCpuBlocks(text);
  switch (family(arch)) {
    case 'x86':
      return blocks.map((b) => parseX86Block(b, arch));
    case 'arm':
      return blocks.map((b) => parseAarch64Block(b, arch));
    default:
      return blocks.map((b) => ({ index: b.index, arch, mode: 'unknown', registers: {}, raw: b.raw }));
  }
}

/**
 * The vCPU's registers grouped for display, in order; only names present in `cpu.registers` are
 * listed, and registers no group claims end up in a final "Other" group so nothing is hidden.
 */
export function registerGroups(cpu: Pick<CpuState, 'arch' | 'registers'>): RegisterGroup[] {
  const fam = family(cpu.arch);
  const template = fam === 'x86' ? X86_GROUPS : fam === 'arm' ? AARCH64_GROUPS : [];
  const claimed = new Set<string>();
  const groups: RegisterGroup[] = [];
  for (const g of template) {
    const names = g.names.filter((n) => cpu.registers[n] !== undefined);
    names.forEach((n) => claimed.add(n));
    if (names.length > 0) groups.push({ title: g.title, names });
  }
  const other = Object.keys(cpu.registers).filter((n) => !claimed.has(n));
  if (other.length > 0) groups.push({ title: 'Other', names: other });
  return groups;
}

/** Decoded flag registers: RFLAGS, CR0, CR4, EFER on x86; PSTATE (or CPSR) on Arm. */
export function decodeRegisterFlags(cpu: Pick<CpuState, 'arch' | 'registers' | 'mode'>): FlagDecoding[] {
  switch (family(cpu.arch)) {
    case 'x86':
      return decodeX86Flags(cpu);
    case 'arm':
      return decodeAarch64Flags(cpu);
    default:
      return [];
  }
}
