/**
 * The writer side of memory ranges: RangeWriter cuts a byte stream of any chunk sizes into pages for
 * the page pipeline; RangeHost is what a range (and placed ranges) may ask of the BundleWriter.
 */
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { PAGE_SIZE, type RangeEntry } from './format';
import type { PagePipeline } from './page-pipeline';

export interface MemoryRangeStats {
  start: bigint;
  length: bigint;
  pages: number;
  zeroPages: number;
  /** Non-zero pages identical to a page stored earlier (in any range): stored once. */
  dedupPages: number;
  storedPages: number;
}

export interface MemoryRangeWriter {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<MemoryRangeStats>;
}

/** The writer's services to an open range. A failure in flush/drain fails the whole writer. */
export interface RangeHost {
  readonly pages: PagePipeline;
  flush(): Promise<void>;
  drain(): Promise<void>;
  /** Throws the writer's first failure, if any. */
  checkFailure(): void;
  fail(err: Error): void;
  progress(bytes: number): void;
  /** Records the finished range (checks it against the others) and reopens the writer for more. */
  closeRange(entry: RangeEntry): void;
}

/** Splits an arbitrary byte stream into pages, carrying partial pages across chunks. */
export class RangeWriter implements MemoryRangeWriter {
  private readonly carry = Buffer.alloc(PAGE_SIZE);
  private carryLength = 0;
  private length = 0n;
  private pages = 0;
  private zeroPages = 0;
  private ended = false;

  private readonly firstPage: number;

  constructor(
    private readonly host: RangeHost,
    private readonly start: bigint,
    private readonly name: string | undefined,
  ) {
    this.firstPage = host.pages.pageCount;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.ended) throw new VmpmError(`memory range at ${toHex(this.start)} was already ended`);
    this.host.checkFailure();
    let off = 0;
    if (this.carryLength > 0) {
      const n = Math.min(PAGE_SIZE - this.carryLength, chunk.length);
      chunk.copy(this.carry, this.carryLength, 0, n);
      this.carryLength += n;
      off = n;
      if (this.carryLength === PAGE_SIZE) {
        if (this.page(this.carry, 0)) await this.host.flush();
        this.carryLength = 0;
      }
    }
    // Synchronous per page; an await only when a batch is full (an await per page cost ~10% of the
    // calling thread's time: 262144 microtask turns per GiB).
    while (chunk.length - off >= PAGE_SIZE) {
      if (this.page(chunk, off)) await this.host.flush();
      off += PAGE_SIZE;
    }
    if (off < chunk.length) {
      chunk.copy(this.carry, 0, off);
      this.carryLength = chunk.length - off;
    }
    this.length += BigInt(chunk.length);
    this.host.progress(chunk.length);
  }

  /** Adds one page; true when the hash batch is now full and must be flushed before the next page. */
  private page(buf: Buffer, off: number): boolean {
    const kind = this.host.pages.add(buf, off);
    this.pages++;
    if (kind === 'zero') {
      this.zeroPages++;
      return false;
    }
    return this.host.pages.batchFull;
  }

  async end(expectedLength?: bigint): Promise<MemoryRangeStats> {
    if (this.ended) throw new VmpmError(`memory range at ${toHex(this.start)} was already ended`);
    this.ended = true;
    this.host.checkFailure();
    if (expectedLength !== undefined && expectedLength !== this.length) {
      const err = new VmpmError(`memory range at ${toHex(this.start)}: the source gave ${this.length} bytes, expected ${expectedLength}`);
      this.host.fail(err);
      throw err;
    }
    if (this.carryLength > 0) {
      // A partial last page is stored zero-padded; the range length says where the data ends.
      this.carry.fill(0, this.carryLength);
      if (this.page(this.carry, 0)) await this.host.flush();
      this.carryLength = 0;
    }
    await this.host.drain();
    const { dedupPages, storedPages } = this.host.pages.pageCounts();
    const entry: RangeEntry = { start: this.start, length: this.length, firstPage: this.firstPage, pages: this.pages, zeroPages: this.zeroPages };
    if (this.name !== undefined) entry.name = this.name;
    this.host.closeRange(entry);
    return { start: this.start, length: this.length, pages: this.pages, zeroPages: this.zeroPages, dedupPages, storedPages };
  }
}
