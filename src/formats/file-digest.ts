/**
 * SHA-256 of a whole file from the reads a parser already makes, so a dump is not read twice to be
 * hashed (vmpm import). Reads may come in any order and overlap: bytes at the hashed prefix's end
 * are hashed at once, bytes ahead of it wait in a small reorder buffer (copies, at most
 * `maxPending` bytes), and when that is full, or at `digest()`, the bytes nobody read are read here,
 * in file order. The result is always the digest of the file's bytes in order (what `sha256sum`
 * prints); what the reads covered is only not read again.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { VmpmError } from '../util/errors';

const GAP_CHUNK = 4 * 1024 * 1024;

export class FileDigest {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes [0, pos) are hashed. */
  private pos = 0;
  /** Read bytes ahead of `pos`, sorted by offset. */
  private readonly pending: Array<{ offset: number; data: Buffer }> = [];
  private pendingBytes = 0;
  private gapBuf: Buffer | undefined;
  /** Bytes this digest read itself (what the parser's reads did not cover). */
  bytesReadHere = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly what: string,
    private readonly maxPending = 16 * 1024 * 1024,
  ) {}

  /**
   * `data` was just read at `offset`; it may be a transient view, valid until the returned promise
   * settles (copied when it must wait). Calls are taken one at a time, in the order they are made.
   */
  add(offset: number, data: Uint8Array): Promise<void> {
    const next = this.queue.then(() => this.addNow(offset, data));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private queue: Promise<void> = Promise.resolve();

  private async addNow(offset: number, data: Uint8Array): Promise<void> {
    const end = offset + data.length;
    // After digest() (a read-ahead that finished late): the whole file is hashed already.
    if (end <= this.pos || data.length === 0 || this.finished) return;
    if (offset > this.pos) {
      if (this.pendingBytes + data.length <= this.maxPending) {
        this.keep(offset, data);
        return;
      }
      await this.catchUp(offset);
    }
    // A waiting piece may have carried the prefix past some or all of `data` meanwhile.
    if (end > this.pos) {
      const pos = this.pos;
      this.pos = end;
      this.hash.update(data.subarray(pos - offset));
    }
    await this.drain();
  }

  private finished = false;

  /** The file's SHA-256 (hex), reading whatever was not read yet. Call once, after the last read. */
  async digest(): Promise<string> {
    await this.queue;
    this.finished = true;
    await this.catchUp(this.size);
    return this.hash.digest('hex');
  }

  private keep(offset: number, data: Uint8Array): void {
    const copy = Buffer.from(data);
    let i = this.pending.length;
    while (i > 0 && this.pending[i - 1]!.offset > offset) i--;
    this.pending.splice(i, 0, { offset, data: copy });
    this.pendingBytes += copy.length;
  }

  /** Hashes the waiting pieces that now start at or before `pos`. */
  private async drain(): Promise<void> {
    while (this.pending.length > 0 && this.pending[0]!.offset <= this.pos) {
      const { offset, data } = this.pending.shift()!;
      this.pendingBytes -= data.length;
      const end = offset + data.length;
      if (end <= this.pos) continue;
      const pos = this.pos;
      this.pos = end;
      this.hash.update(data.subarray(pos - offset));
    }
  }

  /** Hashes up to `target`: waiting pieces where they cover the way, the file's own bytes elsewhere. */
  private async catchUp(target: number): Promise<void> {
    await this.drain();
    while (this.pos < target) {
      const next = this.pending[0]?.offset ?? Infinity;
      const until = Math.min(target, next);
      while (this.pos < until) {
        this.gapBuf ??= Buffer.allocUnsafe(GAP_CHUNK);
        const n = Math.min(GAP_CHUNK, until - this.pos);
        const { bytesRead } = await this.fh.read(this.gapBuf, 0, n, this.pos);
        if (bytesRead === 0) throw new VmpmError(`${this.what}: file ended at ${this.pos} while hashing it (it shrank?)`);
        this.pos += bytesRead;
        this.bytesReadHere += bytesRead;
        this.hash.update(this.gapBuf.subarray(0, bytesRead));
      }
      await this.drain();
    }
  }
}
