/**
 * The `snapshot` section: what QEMU's background snapshot reported, and the vCPU registers decoded
 * from its device state, checked name by name against the `info registers` ones read in the same
 * stop. They are two independent readings of one instant, so any difference is worth a warning.
 */
import type { CpusSection } from '../bundle/schema';
import { fromHex, toHex, type Hex } from '../util/hex';
import type { SnapshotInfo } from './memory-snapshot';

export interface SnapshotSection {
  machine: string;
  downtimeMs: number | null;
  /** QEMU's setup before its own stop (query-migrate `setup-time`); inside vmpm's pause. */
  setupMs: number | null;
  streamBytes: number;
  unmappedPages: number;
  /** x86 vCPU registers from the stream's `cpu` device sections (null: not decoded). */
  vmstateCpus: Array<{ index: number; registers: Record<string, Hex> }> | null;
  /**
   * Registers present in both readings that differ ("cpu0.rip: 0x... vs 0x..."); null when not
   * compared (the cpus section IS the stream's registers: cpus.source 'migration-stream').
   */
  mismatches: string[] | null;
  /** How many register values were compared. */
  compared: number;
}

/** `info registers` prints segment flags as `flags & 0x00ffff00` (target/i386 cpu_dump_seg_cache). */
function comparable(name: string, v: bigint): bigint {
  return name.endsWith('.flags') ? v & 0x00ffff00n : v;
}

/** `cpus` undefined: the cpus section is made from these very registers, so there is nothing to compare. */
export function snapshotSection(info: SnapshotInfo, cpus: CpusSection | undefined, warnings: string[]): SnapshotSection {
  const section: SnapshotSection = {
    machine: info.machine,
    downtimeMs: info.downtimeMs,
    setupMs: info.setupMs,
    streamBytes: info.streamBytes,
    unmappedPages: info.unmappedPages,
    vmstateCpus: null,
    mismatches: null,
    compared: 0,
  };
  if (!info.vmstateCpus) return section;
  section.vmstateCpus = info.vmstateCpus.map((c) => ({
    index: c.index,
    registers: Object.fromEntries(Object.entries(c.registers).map(([k, v]) => [k, toHex(v)])),
  }));
  if (cpus === undefined || cpus.arch !== 'x86_64') return section;
  const mismatches: string[] = [];
  for (const v of info.vmstateCpus) {
    const hmp = cpus.cpus.find((c) => c.index === v.index);
    if (!hmp) continue;
    for (const [name, value] of Object.entries(v.registers)) {
      const text = hmp.registers[name];
      if (text === undefined) continue;
      section.compared++;
      if (comparable(name, fromHex(text)) !== comparable(name, value)) mismatches.push(`cpu${v.index}.${name}: info registers ${text}, snapshot ${toHex(value)}`);
    }
  }
  section.mismatches = mismatches;
  if (mismatches.length > 0) {
    warnings.push(`${mismatches.length} register values differ between info registers and the snapshot's device state (first: ${mismatches[0]})`);
  }
  return section;
}
