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

/** One level of an architecture's tables, root first: the kernel's name and the virtual-address bits it indexes. */
export interface LevelSpan {
  name: string;
  shift: bigint;
  bits: number;
}

/** What an architecture reads from one entry: the level's fields, and `address`, the next table's or the page's (before size alignment). */
export type DecodedEntry = Pick<WalkLevel, 'present' | 'leaf' | 'writable' | 'user' | 'noExecute' | 'flags'> & { address: bigint };

/**
 * The per-architecture part of a walk, as libdrgn splits it (one generic page-table iterator, arch
 * callbacks that decode an entry): each architecture keeps its own level names and descriptor formats.
 */
export interface PageTableFormat {
  levels: readonly LevelSpan[];
  /** Decodes the entry read at `entryAddr` of level `level`; throws PageTableError for an encoding no real table has. */
  decode(entry: bigint, level: number, entryAddr: bigint): DecodedEntry;
  /** Effective permissions once a leaf is reached (x86: RW and US on every level, NX on any; arm64 picks PXN or UXN by half). */
  effective(levels: readonly WalkLevel[]): { writable: boolean; user: boolean; noExecute: boolean };
}

/**
 * The shared walk: from `out.root.phys` down `format.levels`, one entry per level, until an entry is not
 * present (`notPresent`, a reportable fault) or maps the page (`phys`, `pageSize`, permissions). Bounded by
 * the number of levels; a table seen twice is a loop (PageTableError).
 */
export async function walkPageTables(tables: TableReader, out: Translation, format: PageTableFormat): Promise<Translation> {
  const virt = out.virt;
  const seen: bigint[] = [out.root.phys];
  let table = out.root.phys;
  for (let level = 0; level < format.levels.length; level++) {
    const { name, shift, bits } = format.levels[level]!;
    const index = Number((virt >> shift) & ((1n << BigInt(bits)) - 1n));
    const entryAddr = table + BigInt(index * 8);
    const entry = await tables.entry(table, index, name);
    const d = format.decode(entry, level, entryAddr);
    out.levels.push({ name, index, table, entryAddr, entry, present: d.present, leaf: d.leaf, writable: d.writable, user: d.user, noExecute: d.noExecute, flags: d.flags });
    if (!d.present) {
      out.notPresent = { level: name, entryAddr, entry };
      return out;
    }
    if (d.leaf) {
      const size = 1n << shift;
      // A large page's own address is aligned to its size (x86 bit 12 there is PAT, not address).
      Object.assign(out, { phys: (d.address & ~(size - 1n)) | (virt & (size - 1n)), pageSize: size, ...format.effective(out.levels) });
      return out;
    }
    checkNoLoop(seen, d.address, name, virt);
    table = d.address;
  }
  throw new PageTableError(`walk of ${toHex(virt)} ended without a leaf`);
}
