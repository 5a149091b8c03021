/**
 * Address-range arithmetic shared by memmap, diff, search and report: coalescing page addresses into
 * ranges, merging adjacent ranges into contiguous runs, and attributing ranges to memory-map regions.
 * All addresses are bigint; every `end` is exclusive.
 */
export const PAGE = 4096n;

export interface AddrRange {
  start: bigint;
  end: bigint;
}

/** A region of the guest-physical memory map, as analysis uses it (schema values parsed). */
export interface RegionSpan extends AddrRange {
  name: string;
  kind: string;
}

/** A range attributed to the region it falls in (null when no region of the map covers it). */
export interface AttributedRange extends AddrRange {
  region: string | null;
  pages: number;
}

/**
 * Builds ranges from page addresses given in ascending order, joining pages that touch. Streaming:
 * call `add` for each page, then `finish`. Used by the memory diff over millions of pages, so it keeps
 * only the open range.
 */
export class PageCoalescer {
  private readonly out: AddrRange[] = [];
  private open: AddrRange | undefined;
  count = 0;

  add(addr: bigint, length: bigint = PAGE): void {
    this.count++;
    if (this.open && this.open.end === addr) {
      this.open.end = addr + length;
      return;
    }
    if (this.open) this.out.push(this.open);
    this.open = { start: addr, end: addr + length };
  }

  finish(): AddrRange[] {
    if (this.open) this.out.push(this.open);
    this.open = undefined;
    return this.out;
  }
}

export function coalescePages(addrs: Iterable<bigint>): AddrRange[] {
  const c = new PageCoalescer();
  for (const a of addrs) c.add(a);
  return c.finish();
}

/** Sorts ranges and merges those that overlap or touch into contiguous runs. */
export function mergeRuns<T extends AddrRange>(ranges: readonly T[]): AddrRange[] {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const runs: AddrRange[] = [];
  for (const r of sorted) {
    const last = runs[runs.length - 1];
    if (last && r.start <= last.end) {
      if (r.end > last.end) last.end = r.end;
    } else {
      runs.push({ start: r.start, end: r.end });
    }
  }
  return runs;
}

/** Bytes of [start,end) covered by the given sorted, non-overlapping runs. */
export function coveredBytes(range: AddrRange, runs: readonly AddrRange[]): bigint {
  let total = 0n;
  for (const r of runs) {
    if (r.end <= range.start) continue;
    if (r.start >= range.end) break;
    const s = r.start > range.start ? r.start : range.start;
    const e = r.end < range.end ? r.end : range.end;
    total += e - s;
  }
  return total;
}

/**
 * Splits each range at region boundaries so every piece lies in exactly one region (or in none), and
 * names that region. Regions are a flat view (non-overlapping); ranges and regions need not be sorted.
 */
export function attributeRanges(ranges: readonly AddrRange[], regions: readonly RegionSpan[]): AttributedRange[] {
  const sortedRegions = [...regions].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: AttributedRange[] = [];
  for (const r of ranges) {
    let cursor = r.start;
    for (const g of sortedRegions) {
      if (cursor >= r.end) break;
      if (g.end <= cursor) continue;
      if (g.start >= r.end) break;
      if (g.start > cursor) {
        out.push(piece(cursor, g.start, null));
        cursor = g.start;
      }
      const e = g.end < r.end ? g.end : r.end;
      out.push(piece(cursor, e, g.name));
      cursor = e;
    }
    if (cursor < r.end) out.push(piece(cursor, r.end, null));
  }
  return out;
}

function piece(start: bigint, end: bigint, region: string | null): AttributedRange {
  return { start, end, region, pages: Number((end - start + PAGE - 1n) / PAGE) };
}

/** The region containing `addr`, found by binary search over regions sorted by start. */
export function regionAt<T extends AddrRange>(sortedRegions: readonly T[], addr: bigint): T | undefined {
  let lo = 0;
  let hi = sortedRegions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const g = sortedRegions[mid]!;
    if (addr < g.start) hi = mid - 1;
    else if (addr >= g.end) lo = mid + 1;
    else return g;
  }
  return undefined;
}
