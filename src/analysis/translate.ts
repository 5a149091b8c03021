/**
 * `vmpm translate FILE ADDR [--cpu N]`: one guest-virtual address walked through a vCPU's page tables,
 * every level shown, and the physical address (or which level is not present).
 */
import { toHex, type Hex } from '../util/hex';
import type { Translation } from '../guestos/linux/pgtable';
import type { KernelView } from './kernel';

export interface TranslateModel {
  address: Hex;
  cpu: number;
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

export async function buildTranslate(view: KernelView, virt: bigint, cpu?: number): Promise<TranslateModel> {
  const c = view.cpu(cpu);
  const t = await view.space(c.index).translate(virt);
  return translationModel(t, c.index, (phys) => view.memory.has(phys, 1));
}

export function translationModel(t: Translation, cpu: number, captured: (phys: bigint) => boolean): TranslateModel {
  const model: TranslateModel = {
    address: toHex(t.virt),
    cpu,
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
