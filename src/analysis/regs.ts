import { VmpmError } from '../util/errors';
import type { CpuState, CpusSection, Manifest } from '../bundle/schema';
import { registerGroups, decodeRegisterFlags } from '../arch';

/** `vmpm regs --json`: registers per vCPU, grouped for display, with decoded flag registers. */
export interface RegsModel {
  /** Where the registers came from; null when the bundle has none. */
  source: RegisterSource | null;
  cpus: RegsCpu[];
}

/**
 * Where a bundle's registers came from (the cpus section's `source`), for `regs` and `info`. They are
 * of different instants: the migration stream's are of QEMU's own stop inside its background snapshot,
 * the instant every page is from; `info registers` is read by vmpm during the capture.
 */
export interface RegisterSource {
  /** dump-notes: an imported dump's NT_PRSTATUS (and QEMU CPU state) notes. */
  kind: 'migration-stream' | 'info-registers' | 'dump-notes';
  /** False when the bundle does not say (written before it was recorded, or imported): `kind` is then inferred from how the bundle was made. */
  recorded: boolean;
  text: string;
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

export function buildRegs(cpus: CpusSection | null, cpuIndex?: number, manifest: Manifest | null = null): RegsModel {
  const all = cpus?.cpus ?? [];
  const selected = cpuIndex === undefined ? all : all.filter((c) => c.index === cpuIndex);
  if (cpuIndex !== undefined && selected.length === 0) {
    const known = all.map((c) => c.index).join(', ') || 'none';
    throw new VmpmError(`no vCPU ${cpuIndex} in this bundle (vCPUs captured: ${known})`);
  }
  return { source: registerSource(cpus, manifest), cpus: selected.map(describeCpu) };
}

export function registerSource(cpus: CpusSection | null, manifest: Manifest | null): RegisterSource | null {
  if (!cpus || cpus.cpus.length === 0) return null;
  if (cpus.source === 'migration-stream') {
    return { kind: cpus.source, recorded: true, text: "QEMU's migration stream (the vCPU state its background snapshot saved in its own stop, the instant every page is from)" };
  }
  if (cpus.source === 'info-registers') return { kind: cpus.source, recorded: true, text: "QEMU's `info registers`, read by vmpm during the capture" };
  if (manifest?.origin === 'import') return { kind: 'dump-notes', recorded: false, text: "the imported dump's ELF notes (NT_PRSTATUS, QEMU's CPU state)" };
  return { kind: 'info-registers', recorded: false, text: "QEMU's `info registers` (inferred: older captures do not record the source and always read them so)" };
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
