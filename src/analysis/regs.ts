import { VmpmError } from '../util/errors';
import type { CpuState, CpusSection } from '../bundle/schema';
import { registerGroups, decodeRegisterFlags } from '../arch';

/** `vmpm regs --json`: registers per vCPU, grouped for display, with decoded flag registers. */
export interface RegsModel {
  cpus: RegsCpu[];
}

export interface RegsCpu {
  index: number;
  arch: string;
  mode: string;
  exceptionLevel?: number;
  halted?: boolean;
  /** Flat name -> "0x..." map, exactly as captured. */
  registers: Record<string, string>;
  /** Display order (from src/arch); names not in any group land in "other". */
  groups: Array<{ title: string; names: string[] }>;
  flags: Array<{ register: string; value: string; set: string[]; text: string }>;
  /** Kernel symbols of code addresses (rip / pc), e.g. {"rip":"sysrq_handle_crash+0x16"}, when the bundle has them. */
  symbols?: Record<string, string>;
}

export function buildRegs(cpus: CpusSection | null, cpuIndex?: number): RegsModel {
  const all = cpus?.cpus ?? [];
  const selected = cpuIndex === undefined ? all : all.filter((c) => c.index === cpuIndex);
  if (cpuIndex !== undefined && selected.length === 0) {
    const known = all.map((c) => c.index).join(', ') || 'none';
    throw new VmpmError(`no vCPU ${cpuIndex} in this bundle (vCPUs captured: ${known})`);
  }
  return { cpus: selected.map(describeCpu) };
}

function describeCpu(cpu: CpuState): RegsCpu {
  const groups = registerGroups(cpu)
    .map((g) => ({ title: g.title, names: g.names.filter((n) => n in cpu.registers) }))
    .filter((g) => g.names.length > 0);
  const grouped = new Set(groups.flatMap((g) => g.names));
  const rest = Object.keys(cpu.registers).filter((n) => !grouped.has(n));
  if (rest.length > 0) groups.push({ title: 'other', names: rest });
  const out: RegsCpu = {
    index: cpu.index,
    arch: cpu.arch,
    mode: cpu.mode,
    registers: cpu.registers,
    groups,
    flags: decodeRegisterFlags(cpu),
  };
  if (cpu.exceptionLevel !== undefined) out.exceptionLevel = cpu.exceptionLevel;
  if (cpu.halted !== undefined) out.halted = cpu.halted;
  return out;
}
