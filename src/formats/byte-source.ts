/**
 * Sequential, forward-only access to a byte stream delivered in arbitrary chunks (a FIFO): exact
 * reads for headers, skips, and bounded sub-streams for bulk data, without ever holding more than one
 * chunk beyond what the caller asked for.
 */
import { FormatError } from './errors';

export class ByteSource {
  private readonly iterator: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private pos = 0;
  private readonly format: string;
  private readonly truncationHint: string;

  /**
   * `format` names the stream in errors ("dump-guest-memory ELF stream"); `truncationHint` is appended
   * to the truncation error, for the likely cause the caller knows ("did QEMU stop writing?").
   */
  constructor(source: AsyncIterable<Buffer>, format: string, truncationHint?: string) {
    this.iterator = source[Symbol.asyncIterator]();
    this.format = format;
    this.truncationHint = truncationHint === undefined ? '' : `; ${truncationHint}`;
  }

  /** Bytes consumed so far (the file offset of the next byte). */
  get position(): number {
    return this.pos;
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.pending = this.pending.length === 0 ? next.value : Buffer.concat([this.pending, next.value]);
    return true;
  }

  private truncated(wanted: number): FormatError {
    const at = this.pos + this.pending.length;
    return new FormatError({
      format: this.format,
      offset: at,
      problem: `ended early at byte ${at} (needed ${wanted} more bytes${this.truncationHint})`,
    });
  }

  /** Exactly `n` bytes (for headers; callers bound `n`). */
  async read(n: number): Promise<Buffer> {
    while (this.pending.length < n) {
      if (!(await this.fill())) throw this.truncated(n - this.pending.length);
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    this.pos += n;
    return out;
  }

  /** Discards exactly `n` bytes. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw this.truncated(left);
      const take = Math.min(left, this.pending.length);
      this.pending = this.pending.subarray(take);
      this.pos += take;
      left -= take;
    }
  }

  /** The next `n` bytes as chunks; must be consumed completely before any other call. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw this.truncated(left);
      const size = Math.min(left, this.pending.length);
      const chunk = this.pending.subarray(0, size);
      this.pending = this.pending.subarray(size);
      this.pos += size;
      left -= size;
      yield chunk;
    }
  }

  /** Reads and discards everything up to the end of the stream; returns how many bytes that was. */
  async drain(): Promise<number> {
    let count = this.pending.length;
    this.pos += this.pending.length;
    this.pending = Buffer.alloc(0);
    while (await this.fill()) {
      count += this.pending.length;
      this.pos += this.pending.length;
      this.pending = Buffer.alloc(0);
    }
    return count;
  }
}
