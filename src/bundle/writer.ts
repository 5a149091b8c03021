/**
 * BundleWriter: writes a v1 bundle in one sequential pass (header, then frames and sections in the
 * order they are produced, then the trailer and footer). See docs/bundle-format.md.
 *
 * This class is the sink, the sections and the writer's state machine; pages go through the
 * PagePipeline (page-pipeline.ts: zero test, hashing, dedup, frame batches, a pluggable
 * FrameEncoder), ranges through RangeWriter (range-writer.ts), and the trailer tables are encoded by
 * the entry descriptors in trailer.ts that the reader's parser shares. The in-memory index is
 * O(pages): 4 bytes per page plus 40-80 bytes per unique stored page (4 MiB for a 4 GiB guest of
 * zero pages, up to ~84 MiB if all its pages differ).
 */
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { compressionCodec, type CompressionCodec, DEFAULT_FRAME_INPUT, MAX_FRAME_INPUT, MAX_LEVEL, maxInputForLevel, MIN_LEVEL } from './codec';
import type { CompressedFrame } from './compress-pool';
import {
  encodeFooter,
  encodeHeader,
  FLAG_DIGESTS_ONLY,
  FORMAT_MINOR_DIGESTS_ONLY,
  MEMORY_INDEX_SECTION,
  SECTION_TYPE_MEMORY_INDEX,
  type FrameEntry,
  MAX_NAME_BYTES,
  MAX_SECTION_BYTES,
  PAGE_SIZE,
  type RangeEntry,
  SECTION_TYPE_JSON,
  SECTION_TYPE_RAW,
  type SectionEntry,
} from './format';
import { InlineZstdEncoder, PooledZstdEncoder, type FrameBatch, type FrameEncoder } from './frame-encoder';
import { type ExpectedPages, PagePipeline } from './page-pipeline';
import { PlacedRangesWriter } from './placed-ranges';
import { RangeWriter, type MemoryRangeStats, type MemoryRangeWriter, type RangeHost } from './range-writer';
import { FileSink, type Sink, StreamSink } from './sink';
import { StringTable, trailerParts } from './trailer';

export type { MemoryRangeStats, MemoryRangeWriter } from './range-writer';

export interface WriterOptions {
  /** Replace an existing file at the target path (default false: an existing file is an error). */
  overwrite?: boolean;
  /** zstd level 1..9, default 3. */
  level?: number;
  /** Uncompressed bytes per frame, a multiple of 4096, default 1 MiB, maximum 4 MiB (less at levels >= 6). */
  frameBytes?: number;
  /** Incompressible pages into raw-block zstd frames instead of the compressor (default true; false for comparisons). */
  rawFrames?: boolean;
  /** Compression worker threads, default min(2, cpus); 0 compresses on the calling thread. */
  workers?: number;
  onProgress?: (p: { memoryBytesIn: number }) => void;
  /**
   * A slim bundle (format 1.1, header flag FLAG_DIGESTS_ONLY): no memory ranges; the memory tables
   * of another bundle go in with addMemoryIndex().
   */
  digestsOnly?: boolean;
  /**
   * The page count and unique pages to size the in-memory index for up front (redact knows them from
   * its source): without it the page index and digest table grow by doubling, which briefly holds
   * both copies (a 4 GiB guest of distinct pages: 48 MiB of digests at the last step instead of 32).
   * A hint: more pages still work.
   */
  expected?: ExpectedPages;
}

const MAX_ADDRESS = 1n << 64n;

type State = 'open' | 'range' | 'finished' | 'aborted';

/**
 * zstd level of memory frames unless asked otherwise. 1, not zstd's usual 3: a capture by dump or
 * pmemsave holds the guest paused while it compresses, and level 1 kept up with QEMU where 3 did not
 * (bench/capture.ts's mixed 1 GiB guest, 3 alternating rounds at load 0.7-1.2: capture 2.02 s at 1
 * against 2.34 s at 3, QEMU's dump + `zstd -3 -T2` 2.11 s; bundle 231 MiB at 1, 237 at 3, the .zst
 * 246; zstd-codec the same way). On other data level 1 is a few % larger (bench/bundle-write.ts).
 */
export const DEFAULT_LEVEL = 1;

export class BundleWriter {
  private readonly hash: Hash = createHash('sha256');
  private offset = 0;
  private readonly sections: SectionEntry[] = [];
  private readonly ranges: RangeEntry[] = [];
  private readonly frames: FrameEntry[] = [];
  private readonly pages: PagePipeline;
  /** Ordered queue of output tasks; each frame's write waits for its encoding. */
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private state: State = 'open';
  private memoryBytesIn = 0;
  /** What an open range may ask of this writer (see range-writer.ts). */
  private readonly host: RangeHost;
  /** The zstd implementation that compresses this bundle's frames (provenance). */
  readonly codec: CompressionCodec;

  private constructor(
    private readonly sink: Sink,
    private readonly path: string | undefined,
    private readonly options: WriterOptions,
  ) {
    const level = options.level ?? DEFAULT_LEVEL;
    if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
      throw new VmpmError(`compression level ${level} is not supported (expected ${MIN_LEVEL}..${MAX_LEVEL})`);
    }
    const frameBytes = options.frameBytes ?? DEFAULT_FRAME_INPUT;
    if (!Number.isInteger(frameBytes) || frameBytes < PAGE_SIZE || frameBytes > MAX_FRAME_INPUT || frameBytes % PAGE_SIZE !== 0) {
      throw new VmpmError(`frame size ${frameBytes} is not supported (expected a multiple of ${PAGE_SIZE} up to ${MAX_FRAME_INPUT})`);
    }
    const workers = options.workers ?? Math.min(2, availableParallelism());
    if (!Number.isInteger(workers) || workers < 0 || workers > 64) throw new VmpmError(`worker count ${workers} is not supported (expected 0..64)`);
    // The workers choose the same way; asking here turns a bad VMPM_CODEC into one error now.
    this.codec = compressionCodec();
    // Start the workers now so their codecs initialise while the caller writes metadata.
    const encoder: FrameEncoder = workers > 0 ? new PooledZstdEncoder(workers, level) : new InlineZstdEncoder(level);
    this.pages = new PagePipeline({
      // The codec's fixed heap only fits smaller frames at higher levels.
      frameBytes: Math.min(frameBytes, maxInputForLevel(level)),
      workers,
      encoder,
      output: { frame: (encoded, batch) => this.writeFrame(encoded, batch) },
      rawFrames: options.rawFrames ?? true,
      ...(options.expected ? { expected: options.expected } : {}),
    });
    this.host = {
      pages: this.pages,
      flush: () => this.guard(this.pages.flush()),
      drain: () => this.guard(this.pages.drain()),
      checkFailure: () => this.checkFailure(),
      fail: (err) => this.fail(err),
      progress: (bytes) => this.progress(bytes),
      closeRange: (entry) => this.closeRange(entry),
    };
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

  /**
   * Slim bundles only: the memory tables whose pages this bundle does not hold (compressMemoryIndex's
   * parts, written one after the other, or encodeMemoryIndex's plain form).
   */
  async addMemoryIndex(payload: Buffer | Buffer[]): Promise<void> {
    if (!this.options.digestsOnly) throw new VmpmError('a memory index goes only into a digests-only (slim) bundle');
    await this.addSection(MEMORY_INDEX_SECTION, SECTION_TYPE_MEMORY_INDEX, payload);
  }

  /** `data` in parts is one payload written without joining it (a slim bundle's 30 MiB index). */
  private async addSection(name: string, type: number, data: Buffer | Buffer[]): Promise<void> {
    this.requireState('open', `add section "${name}"`);
    const nameBytes = Buffer.byteLength(name, 'utf8');
    if (nameBytes === 0 || nameBytes > MAX_NAME_BYTES) throw new VmpmError(`section name must be 1..${MAX_NAME_BYTES} bytes of UTF-8, got ${nameBytes}`);
    if (this.sections.some((s) => s.name === name)) throw new VmpmError(`section "${name}" was already added`);
    const parts = Array.isArray(data) ? data : [data];
    const length = parts.reduce((n, p) => n + p.length, 0);
    if (length > MAX_SECTION_BYTES) throw new VmpmError(`section "${name}" is ${length} bytes (limit ${MAX_SECTION_BYTES})`);
    const digest = createHash('sha256');
    for (const p of parts) digest.update(p);
    const entry: SectionEntry = { name, type, offset: -1, length, sha256: digest.digest() };
    this.sections.push(entry);
    await this.enqueue(async () => {
      entry.offset = this.offset;
      for (const p of parts) await this.emit(p);
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
    this.pages.resetCounts();
    return new RangeWriter(this.host, start, options.name);
  }

  /** Memory ranges whose pages arrive in any order, each exactly once (see placed-ranges.ts). */
  beginPlacedRanges(ranges: Array<{ start: bigint; length: bigint; name?: string }>): PlacedRangesWriter {
    this.requireState('open', 'begin placed memory ranges');
    const writer = new PlacedRangesWriter(this.host, ranges);
    this.state = 'range';
    this.pages.resetCounts();
    return writer;
  }

  /** Queues a frame's bytes after everything before it and records its entry once written. */
  private writeFrame(encoded: Promise<CompressedFrame>, batch: Omit<FrameBatch, 'data'>): Promise<void> {
    return this.enqueue(async () => {
      const frame = await encoded;
      const offset = this.offset;
      await this.emit(frame.compressed);
      this.frames.push({
        offset,
        compressedLength: frame.compressed.length,
        uncompressedLength: batch.slotCount * PAGE_SIZE,
        firstSlot: batch.firstSlot,
        slotCount: batch.slotCount,
        sha256: frame.sha256,
      });
    });
  }

  /** A pipeline failure fails the writer, so every later call reports it. */
  private async guard(p: Promise<void>): Promise<void> {
    try {
      await p;
    } catch (err) {
      this.fail(err instanceof Error ? err : new VmpmError(describeError(err)));
      throw this.failure;
    }
  }

  /** Records a finished range (RangeHost.closeRange). */
  private closeRange(entry: RangeEntry): void {
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

  private progress(bytes: number): void {
    this.memoryBytesIn += bytes;
    this.options.onProgress?.({ memoryBytesIn: this.memoryBytesIn });
  }

  private fail(err: Error): void {
    this.failure ??= err;
  }

  private checkFailure(): void {
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<{ path?: string; size: number; sha256: string }> {
    this.requireState('open', 'finish');
    try {
      await this.guard(this.pages.finish());
      await this.chain;
      this.checkFailure();
      this.pages.compactSlots(this.frames);
      const trailerOffset = this.offset;
      // Part by part: the page index and digests go out from the pipeline's own memory, no copy.
      const trailerHash = createHash('sha256');
      for (const part of this.trailerParts()) {
        await this.emit(part);
        trailerHash.update(part);
      }
      const beforeFooter = this.hash.copy().digest();
      const footer = encodeFooter({
        trailerOffset: BigInt(trailerOffset),
        trailerLength: BigInt(this.offset - trailerOffset),
        trailerSha256: trailerHash.digest(),
        fileSha256: beforeFooter,
      }, this.options.digestsOnly ? FORMAT_MINOR_DIGESTS_ONLY : undefined);
      await this.sink.write(footer);
      this.hash.update(footer);
      this.offset += footer.length;
      const path = await this.sink.finish();
      this.state = 'finished';
      await this.pages.close();
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
    await this.pages.close();
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

  private trailerParts(): Buffer[] {
    const strings = new StringTable();
    const sections = this.sections.map((e) => ({
      offset: BigInt(e.offset), length: BigInt(e.length), type: e.type, ...strings.add(e.name), sha256: e.sha256,
    }));
    const ranges = this.ranges.map((r) => ({
      start: r.start, length: r.length, firstPage: BigInt(r.firstPage), zeroPages: BigInt(r.zeroPages), ...strings.add(r.name),
    }));
    const frames = this.frames.map((f) => ({ ...f, offset: BigInt(f.offset) }));
    return trailerParts({ sections, ranges, frames, ...this.pages.tables(), strings: strings.bytes() });
  }
}
