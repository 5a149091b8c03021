/**
 * BundleWriter: writes a v1 bundle in one sequential pass (header, then frames and sections in the
 * order they are produced, then the trailer and footer). See docs/bundle-format.md.
 *
 * Work split: the calling thread cuts the input into pages, drops zero pages (memcmp-speed test)
 * and batches the others; worker threads hash each batch's pages (SHA-256), the calling thread then
 * dedups against the digests in submission order and packs new pages into frame batches, which the
 * workers compress. Output is written strictly in order. At most `workers + 1` hash batches and
 * `workers + 1` frame batches (`frameBytes` each, 1 MiB by default) are in flight, so memory stays bounded
 * whatever the image size. The in-memory index is O(pages): 4 bytes per page plus 40-80 bytes per
 * unique stored page (4 MiB for a 4 GiB guest of zero pages, up to ~84 MiB if all its pages differ).
 */
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { compressFrame, DEFAULT_FRAME_INPUT, MAX_FRAME_INPUT, MAX_LEVEL, maxInputForLevel, MIN_LEVEL } from './codec';
import { CompressPool, type CompressedFrame, type HashedPages } from './compress-pool';
import {
  encodeFooter,
  DIGEST_SIZE,
  encodeHeader,
  FLAG_DIGESTS_ONLY,
  FORMAT_MINOR_DIGESTS_ONLY,
  MEMORY_INDEX_SECTION,
  SECTION_TYPE_MEMORY_INDEX,
  FRAME_ENTRY_SIZE,
  type FrameEntry,
  MAX_NAME_BYTES,
  MAX_SECTION_BYTES,
  MAX_SLOTS,
  PAGE_SIZE,
  RANGE_ENTRY_SIZE,
  type RangeEntry,
  SECTION_ENTRY_SIZE,
  SECTION_TYPE_JSON,
  SECTION_TYPE_RAW,
  type SectionEntry,
  trailerLayout,
  ZERO_SLOT,
} from './format';
import { DigestTable, hashPages, isZeroPage, sha256, U32List } from './pages';
import { PlacedRangesWriter } from './placed-ranges';
import { FileSink, type Sink, StreamSink } from './sink';

export interface WriterOptions {
  /** Replace an existing file at the target path (default false: an existing file is an error). */
  overwrite?: boolean;
  /** zstd level 1..9, default 3. */
  level?: number;
  /** Uncompressed bytes per frame, a multiple of 4096, default 1 MiB, maximum 4 MiB (less at levels >= 6). */
  frameBytes?: number;
  /** Compression worker threads, default min(2, cpus); 0 compresses on the calling thread. */
  workers?: number;
  onProgress?: (p: { memoryBytesIn: number }) => void;
  /**
   * A slim bundle (format 1.1, header flag FLAG_DIGESTS_ONLY): no memory ranges; the memory tables
   * of another bundle go in with addMemoryIndex().
   */
  digestsOnly?: boolean;
}

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

const MAX_ADDRESS = 1n << 64n;

type State = 'open' | 'range' | 'finished' | 'aborted';

export class BundleWriter {
  private readonly hash: Hash = createHash('sha256');
  private offset = 0;
  private readonly sections: SectionEntry[] = [];
  private readonly ranges: RangeEntry[] = [];
  private readonly frames: FrameEntry[] = [];
  private readonly pageIndex = new U32List();
  private readonly digests = new DigestTable();
  private readonly level: number;
  private readonly frameBytes: number;
  private readonly workers: number;
  private pool: CompressPool | undefined;
  private batch: Buffer | undefined;
  /** Full-size batch buffers returned by the workers, refilled instead of allocating new ones. */
  private readonly freeBatches: Buffer[] = [];
  private batchPages = 0;
  private batchFirstSlot = 0;
  /** Non-zero pages waiting to be hashed (on a worker), and where their page-index entries are. */
  private hashBatch: Buffer | undefined;
  private hashBatchPages = 0;
  private hashBatchPositions: number[] = [];
  /** Hash jobs in submission order; results are deduplicated strictly in this order. */
  private readonly hashQueue: Array<{ result: Promise<HashedPages>; positions: number[] }> = [];
  /** Outcome counts of the pages of the open range processed so far. */
  private rangeDedupPages = 0;
  private rangeStoredPages = 0;
  /** Ordered queue of output tasks; each frame's write waits for its compression. */
  private chain: Promise<void> = Promise.resolve();
  private readonly inFlight: Promise<void>[] = [];
  private failure: Error | undefined;
  private state: State = 'open';
  private memoryBytesIn = 0;
  /** Set while placed ranges are open: tells them which of their pages were deduplicated or stored. */
  private slotObserver: ((position: number, dedup: boolean) => void) | undefined;

  private constructor(
    private readonly sink: Sink,
    private readonly path: string | undefined,
    private readonly options: WriterOptions,
  ) {
    const level = options.level ?? 3;
    if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
      throw new VmpmError(`compression level ${level} is not supported (expected ${MIN_LEVEL}..${MAX_LEVEL})`);
    }
    const frameBytes = options.frameBytes ?? DEFAULT_FRAME_INPUT;
    if (!Number.isInteger(frameBytes) || frameBytes < PAGE_SIZE || frameBytes > MAX_FRAME_INPUT || frameBytes % PAGE_SIZE !== 0) {
      throw new VmpmError(`frame size ${frameBytes} is not supported (expected a multiple of ${PAGE_SIZE} up to ${MAX_FRAME_INPUT})`);
    }
    const workers = options.workers ?? Math.min(2, availableParallelism());
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw new VmpmError(`worker count ${workers} is not supported (expected 0..64)`);
    this.level = level;
    // The codec's fixed heap only fits smaller frames at higher levels.
    this.frameBytes = Math.min(frameBytes, maxInputForLevel(level));
    this.workers = workers;
    // Start the workers now so their codecs initialise while the caller writes metadata.
    if (workers > 0) this.pool = new CompressPool(workers, level);
    const header = options.digestsOnly ? encodeHeader({ minor: FORMAT_MINOR_DIGESTS_ONLY, flags: FLAG_DIGESTS_ONLY }) : encodeHeader();
    this.enqueue(() => this.emit(header));
  }

  /** Writes to `path` through a temporary file in the same directory (mode 0600), renamed on finish. */
  static async create(path: string, options: WriterOptions = {}): Promise<BundleWriter> {
    const sink = await FileSink.create(path, options.overwrite ?? false);
    try {
      return new BundleWriter(sink, path, options);
    } catch (err) {
      await sink.abort();
      throw err;
    }
  }

  /** Writes to a stream (a pipe, stdout); the stream is not ended by finish(). */
  static toStream(out: NodeJS.WritableStream, options: WriterOptions = {}): BundleWriter {
    return new BundleWriter(new StreamSink(out), undefined, options);
  }

  async addJsonSection(name: string, value: unknown): Promise<void> {
    let text: string | undefined;
    try {
      text = JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? toHex(v) : v));
    } catch (err) {
      throw new VmpmError(`section "${name}" cannot be serialised as JSON: ${describeError(err)}`);
    }
    if (text === undefined) throw new VmpmError(`section "${name}" has no JSON representation (${typeof value})`);
    await this.addSection(name, SECTION_TYPE_JSON, Buffer.from(text, 'utf8'));
  }

  async addRawSection(name: string, data: Buffer): Promise<void> {
    await this.addSection(name, SECTION_TYPE_RAW, data);
  }

  /** Copies a section byte for byte from another bundle (slim, redact): its digest stays the same. */
  async copySection(name: string, type: 'json' | 'raw', data: Buffer): Promise<void> {
    await this.addSection(name, type === 'json' ? SECTION_TYPE_JSON : SECTION_TYPE_RAW, data);
  }

  /** Slim bundles only: the memory tables (encodeMemoryIndex) whose pages this bundle does not hold. */
  async addMemoryIndex(payload: Buffer): Promise<void> {
    if (!this.options.digestsOnly) throw new VmpmError('a memory index goes only into a digests-only (slim) bundle');
    await this.addSection(MEMORY_INDEX_SECTION, SECTION_TYPE_MEMORY_INDEX, payload);
  }

  private async addSection(name: string, type: number, data: Buffer): Promise<void> {
    this.requireState('open', `add section "${name}"`);
    const nameBytes = Buffer.byteLength(name, 'utf8');
    if (nameBytes === 0 || nameBytes > MAX_NAME_BYTES) throw new VmpmError(`section name must be 1..${MAX_NAME_BYTES} bytes of UTF-8, got ${nameBytes}`);
    if (this.sections.some((s) => s.name === name)) throw new VmpmError(`section "${name}" was already added`);
    if (data.length > MAX_SECTION_BYTES) throw new VmpmError(`section "${name}" is ${data.length} bytes (limit ${MAX_SECTION_BYTES})`);
    const entry: SectionEntry = { name, type, offset: -1, length: data.length, sha256: sha256(data) };
    this.sections.push(entry);
    await this.enqueue(async () => {
      entry.offset = this.offset;
      await this.emit(data);
    });
  }

  /** Captures one memory range from a byte stream (any chunk sizes) starting at guest-physical `start`. */
  async addMemoryRange(
    start: bigint,
    source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array> | NodeJS.ReadableStream,
    options: { name?: string; expectedLength?: bigint } = {},
  ): Promise<MemoryRangeStats> {
    const range = this.beginMemoryRange(start, options.name === undefined ? {} : { name: options.name });
    for await (const chunk of source as AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array>) {
      if (typeof chunk === 'string') {
        this.fail(new VmpmError(`memory range at ${toHex(start)}: the source yields text, not bytes`));
        throw this.failure;
      }
      await range.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    return range.end(options.expectedLength);
  }

  /** Page-by-page alternative to addMemoryRange: write() any chunk sizes, then end(). */
  beginMemoryRange(start: bigint, options: { name?: string } = {}): MemoryRangeWriter & { end(expectedLength?: bigint): Promise<MemoryRangeStats> } {
    this.requireState('open', `begin a memory range at ${toHex(start)}`);
    if (this.options.digestsOnly) throw new VmpmError('a digests-only (slim) bundle holds no memory ranges');
    if (start < 0n || start >= MAX_ADDRESS || start % BigInt(PAGE_SIZE) !== 0n) {
      throw new VmpmError(`memory range start ${start < 0n ? start : toHex(start)} is not a page-aligned 64-bit address`);
    }
    if (options.name !== undefined && Buffer.byteLength(options.name, 'utf8') > MAX_NAME_BYTES) {
      throw new VmpmError(`memory range name is longer than ${MAX_NAME_BYTES} bytes`);
    }
    this.state = 'range';
    this.rangeDedupPages = 0;
    this.rangeStoredPages = 0;
    return new RangeWriter(this, start, options.name, this.pageIndex.length);
  }

  /**
   * @internal Adds one 4 KiB page (at `buf[off..off+4096)`): a zero page is recorded at once; any
   * other page gets a page-index position now and is copied into the current hash batch. Its slot is
   * decided when the batch's digests come back (processHashes), in submission order.
   */
  addPage(buf: Buffer, off: number): 'zero' | 'pending' {
    const position = this.pageIndex.length;
    this.pageIndex.push(ZERO_SLOT); // placeholder until the digest is known
    return this.addPageAt(position, buf, off);
  }

  /**
   * @internal Like addPage, for a page-index position reserved earlier (reservePages): pages of
   * placed ranges arrive in any order. Each position must be given exactly once.
   */
  addPageAt(position: number, buf: Buffer, off: number): 'zero' | 'pending' {
    if (isZeroPage(buf, off)) {
      this.pageIndex.set(position, ZERO_SLOT);
      return 'zero';
    }
    this.hashBatch ??= this.takeBuffer();
    buf.copy(this.hashBatch, this.hashBatchPages * PAGE_SIZE, off, off + PAGE_SIZE);
    this.hashBatchPages++;
    this.hashBatchPositions.push(position);
    return 'pending';
  }

  /** @internal Reserves `count` page-index positions (zero pages until placed); returns the first. */
  reservePages(count: number): number {
    const first = this.pageIndex.length;
    for (let i = 0; i < count; i++) this.pageIndex.push(ZERO_SLOT);
    return first;
  }

  /** Memory ranges whose pages arrive in any order, each exactly once (see placed-ranges.ts). */
  beginPlacedRanges(ranges: Array<{ start: bigint; length: bigint; name?: string }>): PlacedRangesWriter {
    this.requireState('open', 'begin placed memory ranges');
    const writer = new PlacedRangesWriter(this, ranges);
    this.state = 'range';
    this.rangeDedupPages = 0;
    this.rangeStoredPages = 0;
    this.slotObserver = (position, dedup) => writer.observeSlot(position, dedup);
    return writer;
  }

  /** @internal Ends placed ranges: back to accepting sections and ranges. */
  endPlacedRanges(): void {
    this.slotObserver = undefined;
  }

  /** @internal True when the hash batch is full and must be flushed before more pages are added. */
  hashBatchFull(): boolean {
    return this.hashBatchPages * PAGE_SIZE === this.frameBytes;
  }

  /** @internal Sends the current hash batch to a worker (or hashes it here); bounds the jobs in flight. */
  async flushHashBatch(): Promise<void> {
    const batch = this.hashBatch;
    if (batch && this.hashBatchPages > 0) {
      const size = this.hashBatchPages * PAGE_SIZE;
      const data = size === batch.length ? batch : Buffer.from(batch.subarray(0, size));
      if (data !== batch) this.recycle(batch);
      const result: Promise<HashedPages> = this.pool ? this.pool.hashPages(data) : Promise.resolve({ digests: hashPages(data), input: data });
      result.catch(() => undefined); // observed in processHashes; avoid an unhandled rejection meanwhile
      this.hashQueue.push({ result, positions: this.hashBatchPositions });
      this.hashBatch = undefined;
      this.hashBatchPages = 0;
      this.hashBatchPositions = [];
    }
    while (this.hashQueue.length > Math.max(1, this.workers) + 1) await this.processHashes();
  }

  /** @internal Flushes and processes every pending hash job (at the end of a range). */
  async drainHashes(): Promise<void> {
    await this.flushHashBatch();
    while (this.hashQueue.length > 0) await this.processHashes();
  }

  /** @internal Outcome counts of the open range's non-zero pages (valid after drainHashes). */
  rangeCounts(): { dedupPages: number; storedPages: number } {
    return { dedupPages: this.rangeDedupPages, storedPages: this.rangeStoredPages };
  }

  /** Dedups the oldest hash job's pages: known digests reuse their slot, new ones go into the frame batch. */
  private async processHashes(): Promise<void> {
    const job = this.hashQueue.shift()!;
    let hashed: HashedPages;
    try {
      hashed = await job.result;
    } catch (err) {
      this.fail(err instanceof Error ? err : new VmpmError(describeError(err)));
      throw this.failure;
    }
    const { digests, input } = hashed;
    for (let i = 0; i < job.positions.length; i++) {
      const digest = digests.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE);
      const existing = this.digests.find(digest);
      if (existing >= 0) {
        this.pageIndex.set(job.positions[i]!, existing);
        this.rangeDedupPages++;
        this.slotObserver?.(job.positions[i]!, true);
        continue;
      }
      if (this.digests.count >= MAX_SLOTS) throw new VmpmError(`more than ${MAX_SLOTS} unique pages: beyond what format v1 can index`);
      const slot = this.digests.add(digest);
      this.pageIndex.set(job.positions[i]!, slot);
      this.rangeStoredPages++;
      this.slotObserver?.(job.positions[i]!, false);
      if (!this.batch) {
        this.batch = this.takeBuffer();
        this.batchFirstSlot = slot;
        this.batchPages = 0;
      }
      input.copy(this.batch, this.batchPages * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      this.batchPages++;
      if (this.batchPages * PAGE_SIZE === this.frameBytes) await this.flushBatch();
    }
    this.recycle(input);
  }

  /** A frame-sized buffer from the free list, or a new one that owns its memory (so it can be transferred). */
  private takeBuffer(): Buffer {
    return this.freeBatches.pop() ?? Buffer.allocUnsafeSlow(this.frameBytes);
  }

  private recycle(buf: Buffer | undefined): void {
    if (buf && buf.length === this.frameBytes && buf.byteOffset === 0 && this.freeBatches.length < 3) this.freeBatches.push(buf);
  }

  /** @internal Sends the current batch to compression; waits while too many batches are in flight. */
  async flushBatch(): Promise<void> {
    const batch = this.batch;
    if (!batch || this.batchPages === 0) return;
    const size = this.batchPages * PAGE_SIZE;
    const data = size === batch.length ? batch : Buffer.from(batch.subarray(0, size));
    if (data !== batch) this.recycle(batch);
    const firstSlot = this.batchFirstSlot;
    const slotCount = this.batchPages;
    this.batch = undefined;
    this.batchPages = 0;
    const compressed = this.compress(data);
    compressed.catch(() => undefined); // observed by the write task below; avoid an unhandled rejection meanwhile
    const written = this.enqueue(async () => {
      const frame = await compressed;
      this.recycle(frame.input);
      const offset = this.offset;
      await this.emit(frame.compressed);
      this.frames.push({ offset, compressedLength: frame.compressed.length, uncompressedLength: size, firstSlot, slotCount, sha256: frame.sha256 });
    });
    this.inFlight.push(written);
    while (this.inFlight.length > Math.max(1, this.workers) + 1) await this.inFlight.shift();
  }

  private async compress(data: Buffer): Promise<CompressedFrame> {
    if (this.workers === 0) {
      const compressed = await compressFrame(data, this.level);
      return { compressed, sha256: sha256(compressed) };
    }
    this.pool ??= new CompressPool(this.workers, this.level);
    return this.pool.compress(data);
  }

  /** @internal Called by RangeWriter.end(). */
  closeRange(entry: RangeEntry): void {
    const startPage = entry.start / BigInt(PAGE_SIZE);
    const endPage = startPage + BigInt(entry.pages);
    if (entry.start + entry.length > MAX_ADDRESS) {
      this.fail(new VmpmError(`memory range at ${toHex(entry.start)} of ${entry.length} bytes runs past the 64-bit address space`));
    }
    for (const r of this.ranges) {
      const rs = r.start / BigInt(PAGE_SIZE);
      const re = rs + BigInt(r.pages);
      if (entry.pages > 0 && r.pages > 0 && startPage < re && rs < endPage) {
        this.fail(
          new VmpmError(
            `memory range ${toHex(entry.start)}+${toHex(entry.length)} overlaps range ${toHex(r.start)}+${toHex(r.length)} (ranges must not share a page)`,
          ),
        );
      }
    }
    if (this.failure) throw this.failure;
    this.ranges.push(entry);
    this.state = 'open';
  }

  /** @internal */
  progress(bytes: number): void {
    this.memoryBytesIn += bytes;
    this.options.onProgress?.({ memoryBytesIn: this.memoryBytesIn });
  }

  /** @internal */
  fail(err: Error): void {
    this.failure ??= err;
  }

  /** @internal */
  checkFailure(): void {
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<{ path?: string; size: number; sha256: string }> {
    this.requireState('open', 'finish');
    try {
      await this.drainHashes();
      await this.flushBatch();
      await this.chain;
      this.checkFailure();
      const trailerOffset = this.offset;
      const trailer = this.encodeTrailer();
      await this.emit(trailer);
      const beforeFooter = this.hash.copy().digest();
      const footer = encodeFooter({
        trailerOffset: BigInt(trailerOffset),
        trailerLength: BigInt(trailer.length),
        trailerSha256: sha256(trailer),
        fileSha256: beforeFooter,
      }, this.options.digestsOnly ? FORMAT_MINOR_DIGESTS_ONLY : undefined);
      await this.sink.write(footer);
      this.hash.update(footer);
      this.offset += footer.length;
      const path = await this.sink.finish();
      this.state = 'finished';
      await this.pool?.close();
      const result: { path?: string; size: number; sha256: string } = { size: this.offset, sha256: this.hash.digest('hex') };
      if (path !== undefined) result.path = path;
      return result;
    } catch (err) {
      await this.abort();
      throw err instanceof VmpmError ? err : new VmpmError(`writing bundle${this.path ? ` ${this.path}` : ''} failed: ${describeError(err)}`, { cause: err });
    }
  }

  /** Stops, terminates the workers and deletes the temporary file. Idempotent. */
  async abort(): Promise<void> {
    if (this.state === 'aborted' || this.state === 'finished') return;
    this.state = 'aborted';
    this.fail(new VmpmError('bundle writer was aborted'));
    await this.pool?.close();
    await this.sink.abort();
    await this.chain.catch(() => undefined);
  }

  private requireState(expected: State, what: string): void {
    if (this.failure && this.state !== 'aborted') throw this.failure;
    if (this.state === expected) return;
    const why =
      this.state === 'range' ? 'a memory range is still open (call end() first)' : this.state === 'finished' ? 'the bundle is finished' : 'the writer was aborted';
    throw new VmpmError(`cannot ${what}: ${why}`);
  }

  /** Queues an output task after all earlier ones; the first failure fails every later task. */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const p = this.chain.then(() => {
      if (this.failure) throw this.failure;
      return task();
    });
    p.catch((err: unknown) => this.fail(err instanceof Error ? err : new VmpmError(describeError(err))));
    this.chain = p;
    return p;
  }

  private async emit(buf: Buffer): Promise<void> {
    await this.sink.write(buf);
    this.hash.update(buf);
    this.offset += buf.length;
  }

  private encodeTrailer(): Buffer {
    const names: Buffer[] = [];
    let stringsLength = 0;
    const addString = (s: string | undefined): [number, number] => {
      if (s === undefined || s === '') return [0, 0];
      const b = Buffer.from(s, 'utf8');
      names.push(b);
      stringsLength += b.length;
      return [stringsLength - b.length, b.length];
    };
    const sectionNames = this.sections.map((s) => addString(s.name));
    const rangeNames = this.ranges.map((r) => addString(r.name));
    const pages = this.pageIndex.length;
    const layout = trailerLayout({
      sections: this.sections.length,
      ranges: this.ranges.length,
      frames: this.frames.length,
      slots: this.digests.count,
      pages,
      stringsLength,
    });
    const t = Buffer.alloc(layout.total);
    t.writeUInt32LE(this.sections.length, 0);
    t.writeUInt32LE(this.ranges.length, 4);
    t.writeUInt32LE(this.frames.length, 8);
    t.writeUInt32LE(this.digests.count, 12);
    t.writeBigUInt64LE(BigInt(pages), 16);
    t.writeUInt32LE(stringsLength, 24);
    this.sections.forEach((s, i) => {
      const o = layout.sections + i * SECTION_ENTRY_SIZE;
      t.writeBigUInt64LE(BigInt(s.offset), o);
      t.writeBigUInt64LE(BigInt(s.length), o + 8);
      t.writeUInt32LE(s.type, o + 16);
      t.writeUInt32LE(sectionNames[i]![0], o + 20);
      t.writeUInt32LE(sectionNames[i]![1], o + 24);
      s.sha256.copy(t, o + 32);
    });
    this.ranges.forEach((r, i) => {
      const o = layout.ranges + i * RANGE_ENTRY_SIZE;
      t.writeBigUInt64LE(r.start, o);
      t.writeBigUInt64LE(r.length, o + 8);
      t.writeBigUInt64LE(BigInt(r.firstPage), o + 16);
      t.writeBigUInt64LE(BigInt(r.zeroPages), o + 24);
      t.writeUInt32LE(rangeNames[i]![0], o + 32);
      t.writeUInt32LE(rangeNames[i]![1], o + 36);
    });
    this.frames.forEach((f, i) => {
      const o = layout.frames + i * FRAME_ENTRY_SIZE;
      t.writeBigUInt64LE(BigInt(f.offset), o);
      t.writeUInt32LE(f.compressedLength, o + 8);
      t.writeUInt32LE(f.uncompressedLength, o + 12);
      t.writeUInt32LE(f.firstSlot, o + 16);
      t.writeUInt32LE(f.slotCount, o + 20);
      f.sha256.copy(t, o + 24);
    });
    this.pageIndex.toBuffer().copy(t, layout.pageIndex);
    this.digests.bytes().copy(t, layout.digests);
    Buffer.concat(names).copy(t, layout.strings);
    return t;
  }
}

/** Splits an arbitrary byte stream into pages, carrying partial pages across chunks. */
class RangeWriter implements MemoryRangeWriter {
  private readonly carry = Buffer.alloc(PAGE_SIZE);
  private carryLength = 0;
  private length = 0n;
  private pages = 0;
  private zeroPages = 0;
  private ended = false;

  constructor(
    private readonly writer: BundleWriter,
    private readonly start: bigint,
    private readonly name: string | undefined,
    private readonly firstPage: number,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    if (this.ended) throw new VmpmError(`memory range at ${toHex(this.start)} was already ended`);
    this.writer.checkFailure();
    let off = 0;
    if (this.carryLength > 0) {
      const n = Math.min(PAGE_SIZE - this.carryLength, chunk.length);
      chunk.copy(this.carry, this.carryLength, 0, n);
      this.carryLength += n;
      off = n;
      if (this.carryLength === PAGE_SIZE) {
        if (this.page(this.carry, 0)) await this.writer.flushHashBatch();
        this.carryLength = 0;
      }
    }
    // Synchronous per page; an await only when a batch is full (an await per page cost ~10% of the
    // calling thread's time: 262144 microtask turns per GiB).
    while (chunk.length - off >= PAGE_SIZE) {
      if (this.page(chunk, off)) await this.writer.flushHashBatch();
      off += PAGE_SIZE;
    }
    if (off < chunk.length) {
      chunk.copy(this.carry, 0, off);
      this.carryLength = chunk.length - off;
    }
    this.length += BigInt(chunk.length);
    this.writer.progress(chunk.length);
  }

  /** Adds one page; true when the hash batch is now full and must be flushed before the next page. */
  private page(buf: Buffer, off: number): boolean {
    const kind = this.writer.addPage(buf, off);
    this.pages++;
    if (kind === 'zero') {
      this.zeroPages++;
      return false;
    }
    return this.writer.hashBatchFull();
  }

  async end(expectedLength?: bigint): Promise<MemoryRangeStats> {
    if (this.ended) throw new VmpmError(`memory range at ${toHex(this.start)} was already ended`);
    this.ended = true;
    this.writer.checkFailure();
    if (expectedLength !== undefined && expectedLength !== this.length) {
      const err = new VmpmError(`memory range at ${toHex(this.start)}: the source gave ${this.length} bytes, expected ${expectedLength}`);
      this.writer.fail(err);
      throw err;
    }
    if (this.carryLength > 0) {
      // A partial last page is stored zero-padded; the range length says where the data ends.
      this.carry.fill(0, this.carryLength);
      if (this.page(this.carry, 0)) await this.writer.flushHashBatch();
      this.carryLength = 0;
    }
    await this.writer.drainHashes();
    const { dedupPages, storedPages } = this.writer.rangeCounts();
    const entry: RangeEntry = { start: this.start, length: this.length, firstPage: this.firstPage, pages: this.pages, zeroPages: this.zeroPages };
    if (this.name !== undefined) entry.name = this.name;
    this.writer.closeRange(entry);
    return { start: this.start, length: this.length, pages: this.pages, zeroPages: this.zeroPages, dedupPages, storedPages };
  }
}
