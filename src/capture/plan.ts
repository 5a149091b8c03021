/**
 * Which guest-physical ranges hold guest RAM, decided from the flat view of the system address space
 * (`info mtree -f`, AS "memory"). Both memory methods capture exactly these ranges, so `dump` and
 * `pmemsave` bundles hold the same addresses.
 *
 * Rule (parse/mtree.ts ramRanges): a region is guest RAM when its kind is `ram`, or when it is a
 * read-only (`rom`) view of a RAM block that is also mapped as `ram` (x86 PAM shadowing: after SeaBIOS
 * runs, parts of 0xc0000-0xfffff are `rom` views of pc.ram holding guest-written data). Firmware and
 * option ROMs (pc.bios, pc.rom, flash `romd`), device RAM and MMIO are not RAM and are never read
 * (dump-guest-memory's pc.bios PT_LOAD is skipped); they stay in the memmap section with captured: false.
 */
import type { MemRegion } from '../bundle/schema';
import { toHex } from '../util/hex';
import { ramRanges, type FlatRegion } from './parse/mtree';

export type { FlatRegion };

/** One contiguous guest-physical range to capture. */
export interface CaptureRange {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** RAM block backing the range, e.g. "pc.ram". */
  name: string;
  /** Offset of `start` inside that RAM block (where a migration stream's pages for it are). */
  blockOffset?: bigint;
}

export const SYSTEM_ADDRESS_SPACE = 'memory';

export function systemRegions(regions: readonly FlatRegion[]): FlatRegion[] {
  return regions.filter((r) => r.addressSpace === SYSTEM_ADDRESS_SPACE);
}

/** The guest-RAM ranges of the system address space, ascending (see ramRanges for the rule). */
export function planCaptureRanges(regions: readonly FlatRegion[]): CaptureRange[] {
  return ramRanges(regions).map((r) => ({ start: r.start, end: r.end, name: r.name, blockOffset: r.blockOffset }));
}

/** Intersection of [start, end) with the plan, as sub-ranges (ascending), each with its plan index. */
export function intersectPlan(plan: CaptureRange[], start: bigint, end: bigint): Array<CaptureRange & { planIndex: number }> {
  const out: Array<CaptureRange & { planIndex: number }> = [];
  plan.forEach((r, planIndex) => {
    const s = r.start > start ? r.start : start;
    const e = r.end < end ? r.end : end;
    if (s < e) out.push({ start: s, end: e, name: r.name, planIndex });
  });
  return out;
}

export function totalBytes(ranges: Array<{ start: bigint; end: bigint }>): bigint {
  return ranges.reduce((sum, r) => sum + (r.end - r.start), 0n);
}

/** The memmap section's region list: every system-address-space region, marked captured or not. */
export function describeRegions(regions: readonly FlatRegion[], captured: Array<{ start: bigint; end: bigint }>): MemRegion[] {
  return systemRegions(regions).map((r) => {
    const region: MemRegion = {
      name: r.name,
      kind: r.kind,
      start: toHex(r.start),
      end: toHex(r.end),
      captured: isCovered(captured, r.start, r.end),
    };
    if (r.offset !== undefined) region.offset = toHex(r.offset);
    if (r.priority !== undefined) region.priority = r.priority;
    return region;
  });
}

function isCovered(ranges: Array<{ start: bigint; end: bigint }>, start: bigint, end: bigint): boolean {
  let cursor = start;
  for (const r of [...ranges].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    if (r.end <= cursor) continue;
    if (r.start > cursor) return false;
    cursor = r.end;
    if (cursor >= end) return true;
  }
  return cursor >= end;
}
