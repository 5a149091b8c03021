/**
 * What every page-table walker (pgtable-x86_64.ts, pgtable-aarch64.ts) reports: each level it read,
 * the physical address it reached, or why it stopped. Walks read guest-physical memory only through
 * PhysicalMemory, so a table page that was not captured is an error naming that page, never zeros.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';

/** One level of a walk: the entry read and what it says. */
export interface WalkLevel {
  /** The kernel's name for the level: pgd / p4d / pud / pmd / pte (x86 also says pml4 ...). */
  name: string;
  /** Index of the entry in its table. */
  index: number;
  /** Guest-physical address of the table and of the entry read. */
  table: bigint;
  entryAddr: bigint;
  entry: bigint;
  present: boolean;
  /** True when this entry maps the page (a leaf: 4 KiB pte, or a 2 MiB / 1 GiB large page). */
  leaf: boolean;
  /** Permission bits as this level states them (x86: RW, US, NX; arm64: from AP, PXN/UXN). */
  writable: boolean;
  user: boolean;
  noExecute: boolean;
  /** Other decoded flags worth showing (A, D, G, PS, AF ...). */
  flags: string[];
}

export interface Translation {
  virt: bigint;
  /** Where the walk started: CR3 / TTBR1 value and where it came from. */
  root: { phys: bigint; source: string };
  mode: string;
  levels: WalkLevel[];
  /** The physical address, when every level was present. */
  phys?: bigint;
  /** Size of the page that maps `virt` (4 KiB, 2 MiB, 1 GiB). */
  pageSize?: bigint;
  /** Effective permissions over all levels. */
  writable?: boolean;
  user?: boolean;
  noExecute?: boolean;
  /** When not mapped: which level was not present. */
  notPresent?: { level: string; entryAddr: bigint; entry: bigint };
}

/** A page table that cannot be a real one: a loop, an entry pointing outside RAM, reserved bits. */
export class PageTableError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'PageTableError';
  }
}

/** The virtual address is not mapped: names the level whose entry is not present. */
export class NotMappedError extends VmpmError {
  constructor(readonly translation: Translation) {
    const np = translation.notPresent;
    super(
      `virtual address ${toHex(translation.virt)} is not mapped: the ${np?.level ?? '?'} entry at physical ${toHex(np?.entryAddr ?? 0n)} is not present (${toHex(np?.entry ?? 0n)})`,
    );
    this.name = 'NotMappedError';
  }
}

/**
 * Reads page-table entries with the table pages cached: a walk of a large read touches the same
 * few tables again and again. Bounded to CACHE_PAGES pages (2 MiB).
 */
const CACHE_PAGES = 512;
export class TableReader {
  private readonly pages = new Map<bigint, Buffer>();
  constructor(readonly memory: PhysicalMemory) {}

  async entry(table: bigint, index: number, what: string): Promise<bigint> {
    let page = this.pages.get(table);
    if (page === undefined) {
      if (!this.memory.has(table, 4096)) {
        throw new PageTableError(`${what} table at physical ${toHex(table)} is not in captured RAM of ${this.memory.name}: the entry pointing there is damaged or the page table was not captured`);
      }
      page = await this.memory.read(table, 4096);
      if (this.pages.size >= CACHE_PAGES) this.pages.delete(this.pages.keys().next().value as bigint);
      this.pages.set(table, page);
    }
    return page.readBigUInt64LE(index * 8);
  }
}

/** A table address that appears twice in one walk is a loop: no Linux page table maps itself. */
export function checkNoLoop(seen: bigint[], next: bigint, level: string, virt: bigint): void {
  const at = seen.indexOf(next);
  if (at >= 0) {
    throw new PageTableError(
      `page-table loop while translating ${toHex(virt)}: the ${level} entry points back to the table at physical ${toHex(next)} (level ${at + 1} of this walk)`,
    );
  }
  seen.push(next);
}
