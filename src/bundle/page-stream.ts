/**
 * Every captured page of a bundle in ascending address order, for whole-bundle consumers (export):
 * frames are read on this thread and decoded by worker threads ahead of the consumer, in the order
 * the consumer will first need them, so decompression runs in parallel with the consumer's writes.
 *
 * Memory stays bounded: at most `ahead` frames are in flight or decoded before the consumer reaches
 * them, and a decoded frame is kept after its first use only while later pages still refer to it
 * (dedup points pages at older frames), up to `retainBytes`; past that the frame whose last use is
 * furthest away is dropped and decoded again if needed.
 *
 * What is verified (docs/bundle-format.md "Reading a whole bundle"): every frame's stored bytes
 * against the frame's SHA-256 in the trailer (the trailer is covered by the footer's digest), and its
 * decompressed size against the declared one; with `checkPages`, also every page against its page
 * digest, as BundleReader.read() does. A bad frame fails the stream with one line naming the frame,
 * its offset and length, when the consumer reaches the first page it holds.
 */
import { availableParallelism } from 'node:os';
import { BundleFormatError } from './errors';
import { DecodePool } from './decode-pool';
import type { DeflatedPages } from './decode-worker';
import { DIGEST_SIZE, type FrameEntry, PAGE_SIZE, type RangeEntry, ZERO_SLOT } from './format';
import type { FrameStore } from './frame-store';

export interface PageStreamOptions {
  /** Decoding threads (default: the machine's parallelism, at most 4). */
  workers?: number;
  /** Frames decoded ahead of the consumer (default 2 per worker). */
  ahead?: number;
  /** Decoded frames kept for later pages that refer to them (default 64 MiB). */
  retainBytes?: number;
  /** Check every page against its page digest too (default: frame digests only). */
  checkPages?: boolean;
  /** Also hand out each page deflated (zlib level 1, 4 KiB window) for the kdump exporter. */
  deflate?: boolean;
  /** Worker script (tests: a misbehaving worker). */
  script?: string;
}

export interface StreamedPage {
  /** The page (a view into the decoded frame: valid during the callback only). */
  data: Buffer;
  /** With `deflate`: the stored form and whether it is zlib (else the raw page). */
  stored?: { bytes: Buffer; zlib: boolean };
}

export interface StreamStats {
  dataPages: number;
  zeroPages: number;
  /** Frame decodes, including frames decoded again after being dropped. */
  decodes: number;
  /** Most decoded (or in-flight) frame bytes held at once. */
  maxResidentBytes: number;
}

type PageFn = (addr: bigint, page: StreamedPage | null) => void | Promise<void>;

interface Decoded {
  data: Buffer;
  deflated?: DeflatedPages;
}

interface Entry {
  promise: Promise<Decoded>;
  value?: Decoded;
  bytes: number;
}

export async function streamPages(store: FrameStore, ranges: readonly RangeEntry[], fn: PageFn, options: PageStreamOptions = {}): Promise<StreamStats> {
  const run = new StreamRun(store, ranges, options);
  try {
    return await run.walk(fn);
  } finally {
    await run.close();
  }
}

/** One walk: the plan, the frames in flight or kept, and the pool that decodes them. */
class StreamRun {
  private readonly frames: FrameEntry[];
  private readonly frameOf: (slot: number) => number;
  private readonly ahead: number;
  private readonly retainBytes: number;
  /** Walk position (counting data pages) of each frame's last use; -1: never used. */
  private readonly lastUse: Float64Array;
  /** Frames in the order the walk first needs them. */
  private readonly order: number[] = [];
  private readonly seen: Uint8Array;
  private readonly resident = new Map<number, Entry>();
  private readonly pool: DecodePool | undefined;
  private residentBytes = 0;
  private firstUses = 0;
  private nextOrder = 0;
  private current = -1;
  readonly stats: StreamStats = { dataPages: 0, zeroPages: 0, decodes: 0, maxResidentBytes: 0 };

  constructor(
    private readonly store: FrameStore,
    private readonly ranges: readonly RangeEntry[],
    private readonly options: PageStreamOptions,
  ) {
    this.frames = store.s.frames;
    const workers = options.workers ?? Math.max(1, Math.min(4, availableParallelism()));
    this.ahead = options.ahead ?? 2 * workers;
    this.retainBytes = options.retainBytes ?? 64 * 1024 * 1024;
    this.frameOf = frameFinder(store);
    this.lastUse = new Float64Array(this.frames.length).fill(-1);
    this.seen = new Uint8Array(this.frames.length);
    forEachSlot(ranges, store.s.pageIndex, (slot, pos) => {
      const f = this.frameOf(slot);
      if (this.lastUse[f]! < 0) this.order.push(f);
      this.lastUse[f] = pos;
    });
    this.pool = this.order.length > 0 ? new DecodePool(workers, options.script) : undefined;
  }

  async walk(fn: PageFn): Promise<StreamStats> {
    const { pageIndex } = this.store.s;
    const stats = this.stats;
    this.pump();
    let decoded: Decoded | undefined;
    let pos = 0;
    for (const r of this.ranges) {
      for (let p = 0; p < r.pages; p++) {
        const addr = r.start + BigInt(p * PAGE_SIZE);
        const slot = pageIndex[r.firstPage + p]!;
        if (slot === ZERO_SLOT) {
          stats.zeroPages++;
          const w = fn(addr, null);
          if (w) await w;
          continue;
        }
        const f = this.frameOf(slot);
        if (f !== this.current || !decoded) decoded = await this.enter(f);
        const w = fn(addr, pageOf(decoded, slot - this.frames[f]!.firstSlot));
        stats.dataPages++;
        if (w) await w;
        if (this.lastUse[f] === pos) {
          this.drop(f);
          decoded = undefined;
        }
        pos++;
      }
    }
    return stats;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  /** The walk moves to frame `f`: more read-ahead, and the frame (decoded now if it was dropped). */
  private async enter(f: number): Promise<Decoded> {
    if (!this.seen[f]) {
      this.seen[f] = 1;
      this.firstUses++;
    }
    this.current = f;
    this.pump();
    const entry = this.resident.get(f) ?? this.launch(f);
    return entry.value ?? (await entry.promise);
  }

  private launch(f: number): Entry {
    const fe = this.frames[f]!;
    const entry: Entry = { bytes: fe.uncompressedLength, promise: this.decode(f) };
    entry.promise.then((v) => (entry.value = v)).catch(() => undefined);
    this.resident.set(f, entry);
    this.residentBytes += entry.bytes;
    this.stats.decodes++;
    this.stats.maxResidentBytes = Math.max(this.stats.maxResidentBytes, this.residentBytes);
    return entry;
  }

  /** Reads frame `f` here and decodes it on a worker; a bad frame rejects with one line. */
  private async decode(f: number): Promise<Decoded> {
    const { store, options } = this;
    const fe = this.frames[f]!;
    const label = store.frameLabel(f);
    const compressed = await store.readBody(fe.offset, fe.compressedLength, label);
    const reply = await this.pool!.decode({
      compressed,
      size: fe.uncompressedLength,
      // Copies: a view would post its whole underlying buffer (the trailer) to the worker.
      sha256: new Uint8Array(fe.sha256),
      ...(options.checkPages ? { pageDigests: new Uint8Array(store.s.digests.subarray(fe.firstSlot * DIGEST_SIZE, (fe.firstSlot + fe.slotCount) * DIGEST_SIZE)) } : {}),
      ...(options.deflate ? { deflate: true } : {}),
    });
    if ('problem' in reply) throw new BundleFormatError(`${store.path}: ${label}${reply.problem}`);
    if (!('data' in reply)) throw new BundleFormatError(`${store.path}: ${label}: the decoding worker sent an unexpected reply`);
    const value: Decoded = { data: Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength) };
    if (reply.deflated) value.deflated = reply.deflated;
    return value;
  }

  private drop(f: number): void {
    const e = this.resident.get(f);
    if (!e) return;
    this.resident.delete(f);
    this.residentBytes -= e.bytes;
  }

  /** Drops kept frames (already used, needed again later), furthest last use first, until under budget. */
  private trim(): void {
    const kept = (f: number): boolean => this.seen[f] === 1 && f !== this.current;
    let retained = 0;
    for (const [f, e] of this.resident) if (kept(f)) retained += e.bytes;
    while (retained > this.retainBytes) {
      let victim = -1;
      for (const f of this.resident.keys()) if (kept(f) && (victim < 0 || this.lastUse[f]! > this.lastUse[victim]!)) victim = f;
      if (victim < 0) break;
      retained -= this.resident.get(victim)!.bytes;
      this.drop(victim);
    }
  }

  private pump(): void {
    // Retained bytes never exceed resident bytes: the scan in trim() only when it may matter.
    if (this.residentBytes > this.retainBytes) this.trim();
    while (this.nextOrder < this.order.length && this.nextOrder < this.firstUses + this.ahead) {
      const f = this.order[this.nextOrder++]!;
      if (!this.resident.has(f)) this.launch(f);
    }
  }
}

/** Page k of a decoded frame (a view), with its deflated form when there is one. */
function pageOf(decoded: Decoded, k: number): StreamedPage {
  const page: StreamedPage = { data: decoded.data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE) };
  const z = decoded.deflated;
  if (z) {
    const start = k === 0 ? 0 : z.ends[k - 1]!;
    page.stored = { bytes: Buffer.from(z.packed.buffer, z.packed.byteOffset + start, z.ends[k]! - start), zlib: z.zlib[k] === 1 };
  }
  return page;
}

/** Calls `fn(slot, position)` for every non-zero page in walk order (position counts those pages). */
function forEachSlot(ranges: readonly RangeEntry[], pageIndex: Uint32Array, fn: (slot: number, pos: number) => void): void {
  let pos = 0;
  for (const r of ranges) {
    const end = r.firstPage + r.pages;
    for (let i = r.firstPage; i < end; i++) {
      const slot = pageIndex[i]!;
      if (slot !== ZERO_SLOT) fn(slot, pos++);
    }
  }
}

/** frameOfSlot with a one-entry memo: consecutive pages usually live in the same frame. */
function frameFinder(store: FrameStore): (slot: number) => number {
  const frames = store.s.frames;
  let last = 0;
  return (slot) => {
    const f = frames[last];
    if (f && slot >= f.firstSlot && slot < f.firstSlot + f.slotCount) return last;
    last = store.frameOfSlot(slot);
    return last;
  };
}
