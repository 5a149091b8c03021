/**
 * The bundle reader's access to the body: positional reads that fail with the file and the part
 * being read, frames read, digest-checked and decompressed (a small LRU keeps recent ones), and
 * pages cut from them and checked against their page digests. BundleReader owns one; the verifier
 * and the sequential page reader (frame-prefetch.ts) use it too.
 */
import { createHash } from 'node:crypto';
import type { promises as fsp } from 'node:fs';
import { open } from 'node:fs/promises';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { decompressFrame } from './codec';
import { BundleFormatError, CodecError } from './errors';
import { fsErrorText } from './fs-errors';
import { type FrameEntry, PAGE_SIZE, type RangeEntry, ZERO_SLOT } from './format';
import { Lru } from './lru';
import { sha256, ZERO_PAGE } from './pages';
import type { Structure } from './structure';

/** Decompressed frames kept in memory (4 MiB each at most). */
const FRAME_CACHE = 8;
const IO_CHUNK = 4 * 1024 * 1024;

export class FrameStore {
  private readonly cache = new Lru<number, Promise<Buffer>>(FRAME_CACHE);
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fh: fsp.FileHandle,
    readonly s: Structure,
  ) {}

  slotDigest(slot: number): Buffer {
    return this.s.digests.subarray(slot * 32, slot * 32 + 32);
  }

  /** The frame holding `slot` (frames hold consecutive slots in order). */
  frameOfSlot(slot: number): number {
    const frames = this.s.frames;
    let lo = 0;
    let hi = frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (frames[mid]!.firstSlot <= slot) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** A decompressed frame, from the cache when there. */
  frameData(i: number): Promise<Buffer> {
    const cached = this.cache.get(i);
    if (cached) return cached;
    const p = this.loadFrame(i);
    this.keep(i, p);
    return p;
  }

  /** Puts a frame decoded elsewhere (frame-prefetch.ts) in the cache. */
  keep(i: number, p: Promise<Buffer>): void {
    this.cache.set(i, p);
    p.catch(() => this.cache.delete(i));
  }

  cached(i: number): Promise<Buffer> | undefined {
    return this.cache.get(i);
  }

  /** The 4 KiB of page `pageNo` of `range` (zero-padded past a partial end), digest-checked. */
  async pageData(range: RangeEntry, pageNo: number): Promise<Buffer> {
    const slot = this.s.pageIndex[range.firstPage + pageNo]!;
    if (slot === ZERO_SLOT) return ZERO_PAGE;
    const frameNo = this.frameOfSlot(slot);
    const frame = this.s.frames[frameNo]!;
    const data = await this.frameData(frameNo);
    const page = data.subarray((slot - frame.firstSlot) * PAGE_SIZE, (slot - frame.firstSlot + 1) * PAGE_SIZE);
    this.checkPage(page, slot, frameNo, range.start + BigInt(pageNo * PAGE_SIZE));
    return page;
  }

  /** Throws unless `page` hashes to slot `slot`'s digest. */
  checkPage(page: Buffer, slot: number, frameNo: number, addr: bigint): void {
    const d = sha256(page);
    const expected = this.slotDigest(slot);
    if (!d.equals(expected)) {
      throw new BundleFormatError(
        `${this.path}: page at ${toHex(addr)} (slot ${slot}, frame ${frameNo}) SHA-256 mismatch: index says ${expected.toString('hex')}, data hashes to ${d.toString('hex')}`,
      );
    }
  }

  /** "frame N (offset O, L bytes)": how errors name a frame. */
  frameLabel(i: number): string {
    const f = this.s.frames[i]!;
    return `frame ${i} (offset ${f.offset}, ${f.compressedLength} bytes)`;
  }

  /** A frame's stored bytes, checked against the frame digest. */
  async compressedFrame(i: number): Promise<Buffer> {
    const f: FrameEntry = this.s.frames[i]!;
    const label = this.frameLabel(i);
    const compressed = await this.readBody(f.offset, f.compressedLength, label);
    const d = sha256(compressed);
    if (!d.equals(f.sha256)) {
      throw new BundleFormatError(`${this.path}: ${label} SHA-256 mismatch: index says ${f.sha256.toString('hex')}, data hashes to ${d.toString('hex')}`);
    }
    return compressed;
  }

  /** Reads, digest-checks and decompresses frame `i` on this thread. */
  async loadFrame(i: number): Promise<Buffer> {
    const compressed = await this.compressedFrame(i);
    try {
      return await decompressFrame(compressed, this.s.frames[i]!.uncompressedLength);
    } catch (err) {
      if (err instanceof CodecError) throw new BundleFormatError(`${this.path}: ${this.frameLabel(i)}: ${err.message}`);
      throw err;
    }
  }

  async readBody(offset: number, length: number, what: string): Promise<Buffer> {
    if (this.closed) throw new VmpmError(`${this.path} is closed`);
    try {
      return await readAt(this.fh, offset, length);
    } catch (err) {
      throw new BundleFormatError(`${this.path}: cannot read ${what}: ${fsErrorText(err)}`);
    }
  }

  /** Feeds bytes [from, to) of the file to `h`, 4 MiB at a time (and to `observe`, in the one reused buffer). */
  async hashRange(h: ReturnType<typeof createHash>, from: number, to: number, step?: (n: number) => void, observe?: (chunk: Buffer) => void): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.min(IO_CHUNK, Math.max(1, to - from)));
    let pos = from;
    while (pos < to) {
      const n = Math.min(buf.length, to - pos);
      const { bytesRead } = await this.fh.read(buf, 0, n, pos);
      if (bytesRead === 0) throw new BundleFormatError(`${this.path}: file ended at ${pos} while reading up to ${to} (it shrank while open?)`);
      h.update(buf.subarray(0, bytesRead));
      observe?.(buf.subarray(0, bytesRead));
      pos += bytesRead;
      step?.(bytesRead);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.fh.close();
  }
}

/** Reads exactly `length` bytes at `position` or fails naming where the file ended. */
export async function readAt(fh: fsp.FileHandle, position: number, length: number): Promise<Buffer> {
  // Not zero-filled (a quarter of an export's main-thread time went to zeroing frame buffers): every
  // byte is read or the call throws. Its own ArrayBuffer, so it can be transferred to a worker.
  const buf = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new BundleFormatError(`file ended at offset ${position + done}, expected ${length} bytes at ${position}`);
    done += bytesRead;
  }
  return buf;
}

/** SHA-256 of any file, streamed (for files that do not open as bundles). */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(IO_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}
