/**
 * Where the page pipeline's CPU work runs: hashing a batch of pages and encoding a batch of stored
 * pages into one frame. The pipeline only needs this interface, so a different frame encoding (raw
 * zstd blocks for incompressible pages, a native zstd) is a new implementation or a change here, not
 * in the pipeline. Every frame must stay one standard zstd frame (docs/bundle-format.md).
 */
import { compressFrame } from './codec';
import { CompressPool, type CompressedFrame, type HashedPages } from './compress-pool';
import { hashPages, sha256 } from './pages';
import { estimatePages, rawFrame } from './raw-frame';

export type { CompressedFrame, HashedPages };

/** A frame's worth of stored pages: `slotCount` pages of 4096 bytes, slots `firstSlot..`. */
export interface FrameBatch {
  data: Buffer;
  firstSlot: number;
  slotCount: number;
  /** Pages that looked incompressible: a frame of raw zstd blocks (raw-frame.ts), no compressor. */
  raw?: boolean;
}

export interface FrameEncoder {
  /** SHA-256 of each page of `data`; hands `data` back for reuse. */
  hashPages(data: Buffer): Promise<HashedPages>;
  /** One zstd frame holding the batch's pages, and the frame's SHA-256. */
  encode(batch: FrameBatch): Promise<CompressedFrame>;
  /** Ends the workers (if any). Idempotent. */
  close(): Promise<void>;
}

/** zstd-codec at `level`, on a pool of `workers` threads (started now, so their codecs initialise early). */
export class PooledZstdEncoder implements FrameEncoder {
  private readonly pool: CompressPool;
  constructor(workers: number, level: number) {
    this.pool = new CompressPool(workers, level);
  }
  hashPages(data: Buffer): Promise<HashedPages> {
    return this.pool.hashPages(data);
  }
  encode(batch: FrameBatch): Promise<CompressedFrame> {
    return this.pool.compress(batch.data, batch.raw === true);
  }
  close(): Promise<void> {
    return this.pool.close();
  }
}

/** zstd-codec at `level` on the calling thread (workers: 0). */
export class InlineZstdEncoder implements FrameEncoder {
  constructor(private readonly level: number) {}
  hashPages(data: Buffer): Promise<HashedPages> {
    return Promise.resolve({ digests: hashPages(data), input: data, incompressible: estimatePages(data) });
  }
  async encode(batch: FrameBatch): Promise<CompressedFrame> {
    const compressed = batch.raw ? rawFrame(batch.data) : await compressFrame(batch.data, this.level);
    return { compressed, sha256: sha256(compressed) };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
