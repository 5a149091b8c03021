/** Sorted, merged half-open intervals [start, end) of guest-physical addresses. */
export interface Interval {
  start: bigint;
  end: bigint;
}

export function mergeIntervals(list: Interval[]): Interval[] {
  const sorted = list.filter((i) => i.end > i.start).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) {
      if (i.end > last.end) last.end = i.end;
    } else out.push({ start: i.start, end: i.end });
  }
  return out;
}

/** The parts of merged `list` inside [lo, hi), found by binary search. */
export function overlapping(list: Interval[], lo: bigint, hi: bigint): Interval[] {
  let a = 0;
  let b = list.length;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (list[mid]!.end <= lo) a = mid + 1;
    else b = mid;
  }
  const out: Interval[] = [];
  for (let i = a; i < list.length && list[i]!.start < hi; i++) {
    const x = list[i]!;
    out.push({ start: x.start > lo ? x.start : lo, end: x.end < hi ? x.end : hi });
  }
  return out;
}

/** Appends to a list kept merged, for intervals that arrive in roughly ascending order. */
export class IntervalAccumulator {
  private items: Interval[] = [];
  private sorted = true;
  add(i: Interval): void {
    if (i.end <= i.start) return;
    const last = this.items[this.items.length - 1];
    if (last && i.start >= last.start && i.start <= last.end) {
      if (i.end > last.end) last.end = i.end;
      return;
    }
    if (last && i.start < last.start) this.sorted = false;
    this.items.push({ ...i });
  }
  result(): Interval[] {
    return this.sorted ? this.items : mergeIntervals(this.items);
  }
}
