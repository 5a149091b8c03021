/**
 * A FIFO of received chunks that a push parser reads at offsets without copying, except when a value
 * straddles two chunks. Reads never go past `length`: callers check `has(n)` first (the parser waits
 * for more input instead of reading past the end).
 */
export class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private head = 0;
  private total = 0;
  /** Bytes consumed since the queue was created (for error messages: the stream offset). */
  consumed = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  has(n: number): boolean {
    return this.total >= n;
  }

  /** Byte at `i` bytes past the read position (i < length). */
  byteAt(i: number): number {
    let at = this.head + i;
    for (const c of this.chunks) {
      if (at < c.length) return c[at]!;
      at -= c.length;
    }
    throw new RangeError(`byte ${i} is past the ${this.total} queued bytes`);
  }

  uint32At(i: number): number {
    const first = this.chunks[0];
    if (first && this.head + i + 4 <= first.length) return first.readUInt32BE(this.head + i);
    return ((this.byteAt(i) << 24) | (this.byteAt(i + 1) << 16) | (this.byteAt(i + 2) << 8) | this.byteAt(i + 3)) >>> 0;
  }

  /** `n` bytes starting `i` past the read position: a view when they lie in one chunk, else a copy. */
  peek(i: number, n: number): Buffer {
    let at = this.head + i;
    let k = 0;
    while (k < this.chunks.length && at >= this.chunks[k]!.length) {
      at -= this.chunks[k]!.length;
      k++;
    }
    const c = this.chunks[k];
    if (c && at + n <= c.length) return c.subarray(at, at + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const src = this.chunks[k];
      if (!src) throw new RangeError(`${n} bytes at ${i} run past the ${this.total} queued bytes`);
      const take = Math.min(n - filled, src.length - at);
      src.copy(out, filled, at, at + take);
      filled += take;
      at = 0;
      k++;
    }
    return out;
  }

  skip(n: number): void {
    if (n > this.total) throw new RangeError(`cannot skip ${n} of ${this.total} queued bytes`);
    this.total -= n;
    this.consumed += n;
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      if (left < avail) {
        this.head += left;
        return;
      }
      left -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Everything queued, as one buffer (consumed). */
  drain(): Buffer {
    const out = this.peek(0, this.total);
    this.skip(this.total);
    return out;
  }
}
