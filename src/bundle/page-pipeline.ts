/**
 * The page pipeline of the bundle writer: pages in, page index + slot digests + frames out.
 *
 * The calling thread drops zero pages (memcmp-speed test) and batches the others; the encoder's
 * workers hash each batch (SHA-256); back on the calling thread, strictly in submission order, a
 * digest already seen (in any range) reuses its slot, otherwise the page takes a slot in the open frame
 * batch of its kind (compressed, or raw-block for pages the hash workers found incompressible), which
 * goes to the encoder when it holds `frameBytes`. Batches reserve slot ranges, so frames are written
 * in the order they fill, not slot order; compactSlots() closes the last batches' holes and puts the
 * frame entries in slot order at the end. At most
 * `workers + 1` hash batches and `workers + 1` frame batches are in flight, so memory stays bounded.
 *
 * Where to change what (the speed work): the encoding of a frame is the FrameEncoder
 * (frame-encoder.ts); which batch a new page goes into is `store()`; what the hash workers report per
 * page is HashedPages.
 */
import { VmpmError, describeError } from '../util/errors';
import { DIGEST_SIZE, MAX_SLOTS, PAGE_SIZE, ZERO_SLOT } from './format';
import type { CompressedFrame, FrameBatch, FrameEncoder, HashedPages } from './frame-encoder';
import { FrameSlots } from './frame-slots';
import { DigestTable, isZeroPage, U32List } from './pages';

export interface FrameOutput {
  /**
   * Queues the frame's bytes for writing after everything queued before (slot order) and records its
   * frame entry; the returned promise settles when it is written.
   */
  frame(encoded: Promise<CompressedFrame>, batch: Omit<FrameBatch, 'data'>): Promise<void>;
}

export interface PagePipelineOptions {
  /** Bytes per frame batch and per hash batch (a multiple of 4096). */
  frameBytes: number;
  /** Worker count (0: the encoder runs on the calling thread); bounds the batches in flight. */
  workers: number;
  encoder: FrameEncoder;
  output: FrameOutput;
  /** Incompressible pages into raw-block frames (default true; false for comparisons). */
  rawFrames?: boolean;
  /** Sizes the page index and digest table up front (see WriterOptions.expected). */
  expected?: ExpectedPages;
}

/** What a writer that copies another bundle knows in advance: its page count and unique pages. */
export interface ExpectedPages {
  pages: number;
  uniquePages: number;
}

/** How the pages processed since resetCounts() turned out (non-zero pages only). */
export interface PageCounts {
  dedupPages: number;
  storedPages: number;
}

export class PagePipeline {
  private readonly pageIndex: U32List;
  private readonly digests: DigestTable;
  private readonly frameBytes: number;
  private readonly maxInFlight: number;
  private readonly encoder: FrameEncoder;
  private readonly output: FrameOutput;
  /** Full-size batch buffers handed back by the workers, refilled instead of allocating new ones. */
  private readonly freeBuffers: Buffer[] = [];
  /** Non-zero pages waiting to be hashed, and where their page-index entries are. */
  private hashBatch: Buffer | undefined;
  private hashBatchPages = 0;
  private hashBatchPositions: number[] = [];
  /** Hash jobs in submission order; results are deduplicated strictly in this order. */
  private readonly hashQueue: Array<{ result: Promise<HashedPages>; positions: number[] }> = [];
  /** The open frame batches (compressed and raw) and their slot reservations (frame-slots.ts). */
  private readonly slots: FrameSlots;
  private readonly rawFrames: boolean;
  private readonly framesInFlight: Promise<void>[] = [];
  private counts: PageCounts = { dedupPages: 0, storedPages: 0 };
  private slotObserver: ((position: number, dedup: boolean) => void) | undefined;

  constructor(options: PagePipelineOptions) {
    this.frameBytes = options.frameBytes;
    this.maxInFlight = Math.max(1, options.workers) + 1;
    this.encoder = options.encoder;
    this.output = options.output;
    this.rawFrames = options.rawFrames ?? true;
    const framePages = this.frameBytes / PAGE_SIZE;
    this.slots = new FrameSlots(framePages, () => this.takeBuffer());
    // Slot numbers run ahead of the unique-page count by the two open batches' reservations.
    const expected = options.expected;
    this.pageIndex = new U32List(expected ? expected.pages : undefined);
    this.digests = new DigestTable(expected ? expected.uniquePages + 2 * framePages : undefined);
  }

  /** Page-index entries so far (the next page's position). */
  get pageCount(): number {
    return this.pageIndex.length;
  }

  /** True when the hash batch is full: `flush()` before adding the next page. */
  get batchFull(): boolean {
    return this.hashBatchPages * PAGE_SIZE === this.frameBytes;
  }

  /**
   * Adds one 4 KiB page (`buf[off..off+4096)`) at the next page-index position: a zero page is
   * recorded at once; any other page is copied into the hash batch and gets its slot when the batch's
   * digests come back, in submission order.
   */
  add(buf: Buffer, off: number): 'zero' | 'pending' {
    const position = this.pageIndex.length;
    this.pageIndex.push(ZERO_SLOT); // placeholder until the digest is known
    return this.addAt(position, buf, off);
  }

  /** Like add(), for a position reserved earlier (pages of placed ranges arrive in any order; each once). */
  addAt(position: number, buf: Buffer, off: number): 'zero' | 'pending' {
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

  /** Reserves `count` page-index positions (zero pages until placed); returns the first. */
  reserve(count: number): number {
    const first = this.pageIndex.length;
    this.pageIndex.extend(count, ZERO_SLOT); // one fill: a 4 GiB guest reserves a million entries
    return first;
  }

  /** Sends the hash batch to the encoder's workers; waits while too many hash jobs are in flight. */
  async flush(): Promise<void> {
    const batch = this.hashBatch;
    if (batch && this.hashBatchPages > 0) {
      const data = this.trimmed(batch, this.hashBatchPages);
      const result = this.encoder.hashPages(data);
      result.catch(() => undefined); // observed in dedup(); avoid an unhandled rejection meanwhile
      this.hashQueue.push({ result, positions: this.hashBatchPositions });
      this.hashBatch = undefined;
      this.hashBatchPages = 0;
      this.hashBatchPositions = [];
    }
    while (this.hashQueue.length > this.maxInFlight) await this.dedup();
  }

  /** Flushes and deduplicates every pending page (the end of a range): every page has its slot after. */
  async drain(): Promise<void> {
    await this.flush();
    while (this.hashQueue.length > 0) await this.dedup();
  }

  /** drain(), then sends the last (partial) frame batch: every stored page is in a queued frame after. */
  async finish(): Promise<void> {
    await this.drain();
    for (const batch of this.slots.takeOpen()) await this.flushFrame(batch);
  }

  /**
   * After every frame is written: closes the slot holes the last, partly filled batches left, in the
   * page index, the digests and `frames` (their firstSlot), and sorts `frames` into slot order.
   */
  compactSlots(frames: Array<{ firstSlot: number }>): void {
    this.slots.compact(this.pageIndex, this.digests, frames);
  }

  resetCounts(): void {
    this.counts = { dedupPages: 0, storedPages: 0 };
  }

  /** Outcome counts since resetCounts() (complete after drain()). */
  pageCounts(): PageCounts {
    return { ...this.counts };
  }

  /** Tells `observer` each non-zero page's outcome as its digest is known (placed ranges); undefined stops. */
  observeSlots(observer: ((position: number, dedup: boolean) => void) | undefined): void {
    this.slotObserver = observer;
  }

  /** The memory tables for the trailer (complete after finish()). */
  tables(): { pageIndex: Uint32Array; digests: Buffer; slots: number } {
    return { pageIndex: this.pageIndex.view(), digests: this.digests.bytes(), slots: this.digests.count };
  }

  close(): Promise<void> {
    return this.encoder.close();
  }

  /** Dedups the oldest hash job's pages: known digests reuse their slot, new ones are stored. */
  private async dedup(): Promise<void> {
    const job = this.hashQueue.shift()!;
    let hashed: HashedPages;
    try {
      hashed = await job.result;
    } catch (err) {
      throw err instanceof Error ? err : new VmpmError(describeError(err));
    }
    const { digests, input, incompressible } = hashed;
    for (let i = 0; i < job.positions.length; i++) {
      const position = job.positions[i]!;
      const digest = digests.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE);
      const existing = this.digests.find(digest);
      if (existing >= 0) {
        this.pageIndex.set(position, existing);
        this.counts.dedupPages++;
        this.slotObserver?.(position, true);
        continue;
      }
      this.pageIndex.set(position, await this.store(digest, input, i, this.rawFrames && incompressible?.[i] === 1));
      this.counts.storedPages++;
      this.slotObserver?.(position, false);
    }
    this.recycle(input);
  }

  /**
   * A new unique page (page `i` of `input`): its slot, packed into the open frame batch of its kind
   * (incompressible pages, as the hash workers estimated, go to raw-block frames).
   */
  private async store(digest: Buffer, input: Buffer, i: number, raw: boolean): Promise<number> {
    if (this.digests.count >= MAX_SLOTS) throw new VmpmError(`more than ${MAX_SLOTS} unique pages: beyond what format v1 can index`);
    const { slot, full } = this.slots.add(input, i, raw);
    this.digests.setAt(slot, digest);
    if (full) await this.flushFrame(full);
    return slot;
  }

  /** Sends a frame batch to the encoder and its output in order; waits while too many are in flight. */
  private async flushFrame(open: FrameBatch): Promise<void> {
    if (open.slotCount === 0) return;
    const batch: FrameBatch = { data: this.trimmed(open.data, open.slotCount), firstSlot: open.firstSlot, slotCount: open.slotCount };
    if (open.raw) batch.raw = true;
    const encoded = this.encoder.encode(batch).then((frame) => {
      this.recycle(frame.input);
      return frame;
    });
    encoded.catch(() => undefined); // observed by the output's write task; avoid an unhandled rejection meanwhile
    this.framesInFlight.push(this.output.frame(encoded, { firstSlot: batch.firstSlot, slotCount: batch.slotCount }));
    while (this.framesInFlight.length > this.maxInFlight) await this.framesInFlight.shift();
  }

  /** The first `pages` pages of a batch buffer (a copy when partial, so the full buffer is reused). */
  private trimmed(buf: Buffer, pages: number): Buffer {
    const size = pages * PAGE_SIZE;
    if (size === buf.length) return buf;
    const data = Buffer.from(buf.subarray(0, size));
    this.recycle(buf);
    return data;
  }

  /** A frame-sized buffer from the free list, or a new one that owns its memory (so it can be transferred). */
  private takeBuffer(): Buffer {
    return this.freeBuffers.pop() ?? Buffer.allocUnsafeSlow(this.frameBytes);
  }

  private recycle(buf: Buffer | undefined): void {
    if (buf && buf.length === this.frameBytes && buf.byteOffset === 0 && this.freeBuffers.length < 3) this.freeBuffers.push(buf);
  }
}
