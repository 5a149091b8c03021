/**
 * `vmpm translate FILE ADDR [--cpu N]`: one guest-virtual address walked through a vCPU's page tables,
 * every level shown, and the physical address (or which level is not present).
 */
import { toHex, type Hex } from '../util/hex';
import type { Translation } from '../guestos/linux/pgtable';
import type { KernelView } from './kernel';

export interface TranslateModel {
  address: Hex;
  /** The vCPU asked for (the first one by default). */
  cpu: number;
  /**
   * Whose page tables were walked: "vCPU N" when the root is that vCPU's register (x86-64 CR3, aarch64
   * TTBR1_EL1), else the kernel's own tables, the same for every vCPU (aarch64 under QEMU 7.2, which
   * reports no TTBR1_EL1: swapper_pg_dir from VMCOREINFO).
   */
  via: string;
  root: { phys: Hex; source: string };
  mode: string;
  levels: Array<{
    level: string;
    index: number;
    table: Hex;
    entryAddress: Hex;
    entry: Hex;
    present: boolean;
    leaf: boolean;
    writable: boolean;
    user: boolean;
    noExecute: boolean;
    flags: string[];
  }>;
  mapped: boolean;
  physical?: Hex;
  pageSize?: Hex;
  permissions?: { writable: boolean; user: boolean; noExecute: boolean };
  /** Whether the physical page was captured in this bundle. */
  captured?: boolean;
  notPresent?: { level: string; entryAddress: Hex; entry: Hex };
}

export async function buildTranslate(view: Pick<KernelView, 'cpu' | 'space' | 'memory'>, virt: bigint, cpu?: number): Promise<TranslateModel> {
  const c = view.cpu(cpu);
  const space = view.space(c.index);
  const t = await space.translate(virt);
  // The root says which tables (swapper_pg_dir from VMCOREINFO); the same for whichever vCPU was asked for.
  const via = space.vcpuOwned ? `vCPU ${c.index}` : "the kernel's page tables, not a vCPU's";
  return translationModel(t, c.index, (phys) => view.memory.has(phys, 1), via);
}

export function translationModel(t: Translation, cpu: number, captured: (phys: bigint) => boolean, via = `vCPU ${cpu}`): TranslateModel {
  const model: TranslateModel = {
    address: toHex(t.virt),
    cpu,
    via,
    root: { phys: toHex(t.root.phys), source: t.root.source },
    mode: t.mode,
    levels: t.levels.map((l) => ({
      level: l.name,
      index: l.index,
      table: toHex(l.table),
      entryAddress: toHex(l.entryAddr),
      entry: toHex(l.entry),
      present: l.present,
      leaf: l.leaf,
      writable: l.writable,
      user: l.user,
      noExecute: l.noExecute,
      flags: l.flags,
    })),
    mapped: t.phys !== undefined,
  };
  if (t.phys !== undefined) {
    model.physical = toHex(t.phys);
    model.pageSize = toHex(t.pageSize ?? 4096n);
    model.permissions = { writable: t.writable === true, user: t.user === true, noExecute: t.noExecute === true };
    model.captured = captured(t.phys);
  }
  if (t.notPresent) model.notPresent = { level: t.notPresent.level, entryAddress: toHex(t.notPresent.entryAddr), entry: toHex(t.notPresent.entry) };
  return model;
}
