import { toHex, type Hex } from '../../util/hex';
import { PAGE, type AddrRange, type RegionSpan } from '../ranges';

/**
 * The picture of the guest-physical address space used by the HTML report, as plain numbers.
 *
 * Scale: SEGMENTED. Each memory-map region is one segment; unmapped gaps between regions are collapsed
 * to a fixed-width break. Every region gets at least MIN_SHARE of the drawing width so a 16 KiB ROM
 * stays visible next to 3 GiB of RAM; the remaining width is shared in proportion to region size.
 * Inside a segment the scale is linear, and each segment is divided into bins whose colour shows
 * the mix of data, zero and uncaptured pages (and, for diffs, how many pages changed).
 */
export const SPACE_WIDTH = 1000;
const MIN_SHARE = 0.02;
const GAP_WIDTH = 6;

export interface SpaceBin {
  start: Hex;
  end: Hex;
  pages: number;
  dataPages: number;
  zeroPages: number;
  /** Changed + added + removed pages (diff reports only; 0 otherwise). */
  changedPages: number;
}

export interface SpaceSegment {
  kind: 'region' | 'gap';
  name: string;
  regionKind: string;
  start: Hex;
  end: Hex;
  /** Position and width in units of SPACE_WIDTH. */
  x: number;
  width: number;
  bins: SpaceBin[];
}

export interface SpacePicture {
  scale: 'segmented';
  width: number;
  segments: SpaceSegment[];
}

interface Work {
  seg: SpaceSegment;
  start: bigint;
  end: bigint;
  binStarts: bigint[];
  counts: Array<{ data: number; zero: number; changed: number }>;
}

/**
 * Lays out regions and counts pages per bin. `pages` is the bundle's page index (ascending); `changed`
 * the diff's page ranges. Memory proportional to the number of bins (a few hundred), not pages.
 */
export function buildSpacePicture(
  regions: readonly RegionSpan[],
  pages: Iterable<{ addr: bigint; zero: boolean }>,
  changed: readonly AddrRange[] = [],
): SpacePicture {
  const sorted = [...regions].filter((r) => r.end > r.start).sort((a, b) => (a.start < b.start ? -1 : 1));
  const gaps = sorted.filter((r, i) => i > 0 && r.start > sorted[i - 1]!.end).length;
  const available = SPACE_WIDTH - gaps * GAP_WIDTH;
  const minWidth = available * MIN_SHARE;
  const total = sorted.reduce((s, r) => s + Number(r.end - r.start), 0);
  const flexible = Math.max(0, available - minWidth * sorted.length);
  const works: Work[] = [];
  const segments: SpaceSegment[] = [];
  let x = 0;
  sorted.forEach((r, i) => {
    const prev = sorted[i - 1];
    if (prev && r.start > prev.end) {
      segments.push({ kind: 'gap', name: 'unmapped', regionKind: 'gap', start: toHex(prev.end), end: toHex(r.start), x, width: GAP_WIDTH, bins: [] });
      x += GAP_WIDTH;
    }
    const width = minWidth + (total > 0 ? (flexible * Number(r.end - r.start)) / total : 0);
    const seg: SpaceSegment = { kind: 'region', name: r.name, regionKind: r.kind, start: toHex(r.start), end: toHex(r.end), x, width, bins: [] };
    segments.push(seg);
    // About one bin per 4 drawing units, never more bins than pages.
    const pagesIn = (r.end - r.start + PAGE - 1n) / PAGE;
    const nBins = Number(BigInt(Math.max(1, Math.round(width / 4))) < pagesIn ? BigInt(Math.max(1, Math.round(width / 4))) : pagesIn || 1n);
    const binStarts: bigint[] = [];
    const span = r.end - r.start;
    for (let b = 0; b < nBins; b++) binStarts.push(r.start + (span * BigInt(b)) / BigInt(nBins));
    works.push({ seg, start: r.start, end: r.end, binStarts, counts: binStarts.map(() => ({ data: 0, zero: 0, changed: 0 })) });
    x += width;
  });

  const binOf = (w: Work, addr: bigint): number => {
    let lo = 0;
    let hi = w.binStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (w.binStarts[mid]! <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Pages arrive in ascending order, so the current work item only moves forward.
  let wi = 0;
  for (const p of pages) {
    while (wi < works.length && p.addr >= works[wi]!.end) wi++;
    if (wi >= works.length) break;
    const w = works[wi]!;
    if (p.addr < w.start) continue;
    const c = w.counts[binOf(w, p.addr)]!;
    if (p.zero) c.zero++;
    else c.data++;
  }
  for (const r of changed) {
    for (const w of works) {
      if (w.end <= r.start || w.start >= r.end) continue;
      for (let a = r.start > w.start ? r.start : w.start; a < r.end && a < w.end; a += PAGE) w.counts[binOf(w, a)]!.changed++;
    }
  }
  for (const w of works) {
    w.seg.bins = w.binStarts.map((s, i) => {
      const e = w.binStarts[i + 1] ?? w.end;
      return {
        start: toHex(s),
        end: toHex(e),
        pages: Number((e - s + PAGE - 1n) / PAGE),
        dataPages: w.counts[i]!.data,
        zeroPages: w.counts[i]!.zero,
        changedPages: w.counts[i]!.changed,
      };
    });
  }
  return { scale: 'segmented', width: SPACE_WIDTH, segments };
}
