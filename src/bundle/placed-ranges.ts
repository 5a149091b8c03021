/**
 * Memory ranges whose pages arrive in any order, each exactly once: a QEMU migration stream sends
 * a block's pages in address order, except the pages the guest writes during a background snapshot,
 * which QEMU copies out ahead of the rest. Every range's page-index entries are reserved up front,
 * pages go through the writer's normal pipeline (zero test, hashing, dedup, frames) at their
 * position, and end() refuses a range with a page that never came or came twice. Memory: one bit
 * per page for the "seen" map (32 KiB per GiB of RAM); no page is held back.
 */
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { PAGE_SIZE, type RangeEntry } from './format';
import type { MemoryRangeStats, RangeHost } from './range-writer';

interface Placed {
  start: bigint;
  length: bigint;
  name: string | undefined;
  firstPage: number;
  pages: number;
  zeroPages: number;
  dedupPages: number;
  storedPages: number;
}

export class PlacedRangesWriter {
  private readonly ranges: Placed[] = [];
  private readonly seen: Uint8Array;
  private readonly firstPage: number;
  private readonly totalPages: number;
  private placedPages = 0;
  private readonly fillPage = Buffer.alloc(PAGE_SIZE);
  private ended = false;

  constructor(
    private readonly host: RangeHost,
    ranges: Array<{ start: bigint; length: bigint; name?: string }>,
  ) {
    if (ranges.length === 0) throw new VmpmError('no placed memory ranges given');
    let pages = 0;
    const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (const r of sorted) {
      if (r.start < 0n || r.start % BigInt(PAGE_SIZE) !== 0n || r.length <= 0n || r.length % BigInt(PAGE_SIZE) !== 0n) {
        throw new VmpmError(`placed memory range ${toHex(r.start)}+${toHex(r.length)} is not whole pages`);
      }
      const prev = this.ranges[this.ranges.length - 1];
      if (prev && prev.start + prev.length > r.start) throw new VmpmError(`placed memory ranges overlap at ${toHex(r.start)}`);
      const n = Number(r.length / BigInt(PAGE_SIZE));
      this.ranges.push({ start: r.start, length: r.length, name: r.name, firstPage: 0, pages: n, zeroPages: 0, dedupPages: 0, storedPages: 0 });
      pages += n;
    }
    this.totalPages = pages;
    this.seen = new Uint8Array(Math.ceil(pages / 8));
    this.firstPage = host.pages.reserve(pages);
    host.pages.observeSlots((position, dedup) => this.observeSlot(position, dedup));
    let next = this.firstPage;
    for (const r of this.ranges) {
      r.firstPage = next;
      next += r.pages;
    }
  }

  /** The placed ranges, ascending by address (index them with put()/fill()). */
  get layout(): ReadonlyArray<{ start: bigint; length: bigint; name: string | undefined }> {
    return this.ranges;
  }

  /**
   * Places page `page` of range `range` from `buf[off..off+4096)`. True when the writer's hash batch
   * is full: the caller must `await flush()` before the next page (one await per batch, not per page).
   */
  put(range: number, page: number, buf: Buffer, off: number): boolean {
    const r = this.ranges[range];
    if (!r || !Number.isInteger(page) || page < 0 || page >= r.pages) throw new VmpmError(`placed page ${page} of range ${range} does not exist`);
    const position = r.firstPage + page;
    const bit = position - this.firstPage;
    if (this.seen[bit >> 3]! & (1 << (bit & 7))) {
      throw new VmpmError(`page ${toHex(r.start + BigInt(page) * BigInt(PAGE_SIZE))} was sent twice (not a single-pass snapshot)`);
    }
    this.host.checkFailure();
    this.seen[bit >> 3]! |= 1 << (bit & 7);
    this.placedPages++;
    if (this.host.pages.addAt(position, buf, off) === 'zero') {
      r.zeroPages++;
      return false;
    }
    return this.host.pages.batchFull;
  }

  /** Places a page whose 4096 bytes are all `byte` (a migration stream's "zero" record). */
  fill(range: number, page: number, byte: number): boolean {
    if (byte !== this.fillPage[0]) this.fillPage.fill(byte);
    return this.put(range, page, this.fillPage, 0);
  }

  async flush(): Promise<void> {
    await this.host.flush();
  }

  /** The pipeline reports each non-zero page's outcome once its digest is known. */
  private observeSlot(position: number, dedup: boolean): void {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.ranges[mid]!.firstPage <= position) lo = mid;
      else hi = mid - 1;
    }
    const r = this.ranges[lo]!;
    if (dedup) r.dedupPages++;
    else r.storedPages++;
  }

  /** Checks that every page came, finishes hashing and closes the ranges. */
  async end(): Promise<MemoryRangeStats[]> {
    if (this.ended) throw new VmpmError('placed memory ranges were already ended');
    this.ended = true;
    this.host.checkFailure();
    if (this.placedPages !== this.totalPages) {
      const missing = this.firstMissing();
      const err = new VmpmError(`${this.totalPages - this.placedPages} of ${this.totalPages} pages never arrived (the first at ${missing})`);
      this.host.fail(err);
      throw err;
    }
    await this.host.drain();
    this.host.pages.observeSlots(undefined);
    return this.ranges.map((r) => {
      const entry: RangeEntry = { start: r.start, length: r.length, firstPage: r.firstPage, pages: r.pages, zeroPages: r.zeroPages };
      if (r.name !== undefined) entry.name = r.name;
      this.host.closeRange(entry);
      return { start: r.start, length: r.length, pages: r.pages, zeroPages: r.zeroPages, dedupPages: r.dedupPages, storedPages: r.storedPages };
    });
  }

  private firstMissing(): string {
    for (const r of this.ranges) {
      for (let p = 0; p < r.pages; p++) {
        const bit = r.firstPage + p - this.firstPage;
        if (!(this.seen[bit >> 3]! & (1 << (bit & 7)))) return toHex(r.start + BigInt(p) * BigInt(PAGE_SIZE));
      }
    }
    return '?';
  }
}
