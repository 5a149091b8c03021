/**
 * The `cpus` section of an imported bundle, from the dump's ELF notes. The notes carry less than
 * QEMU's `info registers`: NT_PRSTATUS has the general registers and selectors, QEMU's x86 note adds
 * segment caches, descriptor tables and cr0-cr4; neither has EFER, DR0-7, x87/SSE, CPL, A20 or HLT.
 * Those registers are left out of the map (absent), never written as zero.
 */
import type { CpuState, CpusSection } from '../bundle';
import type { Hex } from '../util/hex';
import { cpuRegistersFromNotes, EM_386, EM_AARCH64, EM_X86_64, type ElfNote, NT_PRSTATUS } from '../formats/elf';

const CS_L = 1n << 21n;

/** e_machine for a kdump file, which has none: from the NT_PRSTATUS size, else utsname.machine. */
export function machineForKdump(notes: readonly ElfNote[], utsMachine: string): number | undefined {
  const pr = notes.find((n) => n.name === 'CORE' && n.type === NT_PRSTATUS);
  if (pr?.desc.length === 336) return EM_X86_64;
  if (pr?.desc.length === 144) return EM_386;
  if (pr?.desc.length === 392) return EM_AARCH64;
  if (utsMachine === 'x86_64') return EM_X86_64;
  if (utsMachine === 'aarch64') return EM_AARCH64;
  if (/^i[3-6]86$/.test(utsMachine)) return EM_386;
  return undefined;
}

export function archOfMachine(machine: number | undefined): string {
  return machine === EM_AARCH64 ? 'aarch64' : 'x86_64';
}

export function cpusFromNotes(notes: readonly ElfNote[], machine: number, source: string): CpusSection {
  const arch = archOfMachine(machine);
  const cpus: CpuState[] = cpuRegistersFromNotes(notes, machine, true).map((c) => {
    const cpu: CpuState = {
      index: c.index,
      arch,
      mode: modeOf(c.registers, machine),
      registers: c.registers,
      raw: `registers from ${source}: NT_PRSTATUS${c.qemu ? ' and QEMU CPU state' : ''}${c.fp ? ' and NT_PRFPREG' : ''}; registers the notes do not carry are absent`,
    };
    if (arch === 'aarch64' && c.registers.pstate !== undefined) cpu.exceptionLevel = Number((BigInt(c.registers.pstate) >> 2n) & 3n);
    return cpu;
  });
  return { arch, cpus };
}

function modeOf(r: Record<string, Hex>, machine: number): string {
  if (machine === EM_AARCH64) {
    if (r.pstate === undefined) return 'unknown';
    const m = Number(BigInt(r.pstate) & 0xfn);
    return `el${m >> 2}${m & 1 ? 'h' : 't'}`;
  }
  if (r.cr0 !== undefined && (BigInt(r.cr0) & 1n) === 0n) return 'real';
  if (r['cs.flags'] !== undefined) return (BigInt(r['cs.flags']) & CS_L) !== 0n ? 'long' : 'protected';
  return machine === EM_X86_64 ? 'long' : 'protected';
}
