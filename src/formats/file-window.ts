/**
 * Bounded positional reads over an open file for the dump parsers: every read is checked against the
 * file size first (a length or offset from a hostile header can never make it allocate more than
 * `maxRead` or read past the end), and a sliding window of `windowBytes` makes the mostly-forward
 * reads of a dump parser cost one system call per window instead of one per page.
 */
import type { FileHandle } from 'node:fs/promises';
import { VmpmError } from '../util/errors';
import type { FileDigest } from './file-digest';

export class FileWindow {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  private digest: FileDigest | undefined;
  /** With readAhead(): the next window, being read into the spare buffer. */
  private ahead: { start: number; end: number; buf: Buffer; done: Promise<void> } | undefined;
  private spare: Buffer | undefined;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly what: string,
    private readonly windowBytes = 8 * 1024 * 1024,
    private readonly maxRead = 64 * 1024 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(windowBytes);
  }

  /** Every byte this window reads from now on also goes to `digest` (the file's SHA-256 without a second read). */
  hashInto(digest: FileDigest): this {
    this.digest = digest;
    return this;
  }

  /**
   * Sequential reads: after each window is filled, the next one is read into a second buffer while
   * the caller works on this one (a window's view stays valid until the next read, as without it).
   */
  readAhead(): this {
    this.spare ??= Buffer.allocUnsafe(this.windowBytes);
    return this;
  }

  /** Exactly `length` bytes at `offset`; the result may be a view of the window: copy to keep it. */
  async read(offset: number | bigint, length: number | bigint, what: string): Promise<Buffer> {
    const off = Number(offset);
    const len = Number(length);
    if (offset < 0 || length < 0 || BigInt(offset) + BigInt(length) > BigInt(this.size)) {
      throw new VmpmError(`${this.what}: ${what} (${length} bytes at offset ${offset}) lies past the end of the ${this.size}-byte file`);
    }
    if (len > this.maxRead) throw new VmpmError(`${this.what}: ${what} of ${len} bytes is implausibly large`);
    if (off >= this.start && off + len <= this.end) return this.buf.subarray(off - this.start, off - this.start + len);
    if (len > this.windowBytes) return this.readDirect(off, len);
    const ahead = this.ahead;
    const { buf, start, end } = this;
    this.ahead = undefined;
    this.start = this.end = 0;
    let result: Buffer | undefined;
    if (ahead && ahead.start <= off && off + len <= ahead.end) {
      // Within the window read ahead: move there.
      await ahead.done;
      this.spare = buf;
      this.buf = ahead.buf;
      this.start = ahead.start;
      this.end = ahead.end;
    } else if (ahead && ahead.start === end && start <= off && off < end && off + len <= ahead.end) {
      // Across the end of this window into the one read ahead (sequential reads that do not divide the
      // window): the two parts copied together, and the next window is the one read ahead. Starting a
      // window at `off` instead would read most of the read-ahead again, and abandon it: about every
      // byte of a dump read twice.
      result = Buffer.allocUnsafe(len);
      buf.copy(result, 0, off - start, end - start);
      await ahead.done;
      ahead.buf.copy(result, end - off, 0, off + len - ahead.start);
      this.spare = buf;
      this.buf = ahead.buf;
      this.start = ahead.start;
      this.end = ahead.end;
    } else {
      // A read-ahead elsewhere is abandoned: it must finish before its buffer is used again.
      if (ahead) await ahead.done.catch(() => undefined);
      this.end = off + Math.min(this.windowBytes, this.size - off);
      await this.fill(this.buf, off, this.end - off);
      this.start = off;
    }
    if (this.spare && this.end < this.size) {
      const start = this.end;
      const end = start + Math.min(this.windowBytes, this.size - start);
      const buf = this.spare;
      this.ahead = { start, end, buf, done: this.fill(buf, start, end - start) };
      this.ahead.done.catch(() => undefined); // surfaces when (if) the window moves there
    }
    return result ?? this.buf.subarray(off - this.start, off - this.start + len);
  }

  private async readDirect(off: number, len: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(len);
    await this.fill(out, off, len);
    return out;
  }

  private async fill(target: Buffer, off: number, len: number): Promise<void> {
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.fh.read(target, done, len - done, off + done);
      if (bytesRead === 0) throw new VmpmError(`${this.what}: file ended at ${off + done} while reading (it shrank?)`);
      done += bytesRead;
    }
    if (this.digest) await this.digest.add(off, target.subarray(0, len));
  }
}
