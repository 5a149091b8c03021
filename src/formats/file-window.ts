/**
 * Bounded positional reads over an open file for the dump parsers: every read is checked against the
 * file size first (a length or offset from a hostile header can never make it allocate more than
 * `maxRead` or read past the end), and a sliding window of `windowBytes` makes the mostly-forward
 * reads of a dump parser cost one system call per window instead of one per page.
 */
import type { FileHandle } from 'node:fs/promises';
import { VmpmError } from '../util/errors';

export class FileWindow {
  private buf: Buffer;
  private start = 0;
  private end = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly what: string,
    private readonly windowBytes = 8 * 1024 * 1024,
    private readonly maxRead = 64 * 1024 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(windowBytes);
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
    const n = Math.min(this.windowBytes, this.size - off);
    await this.fill(this.buf, off, n);
    this.start = off;
    this.end = off + n;
    return this.buf.subarray(0, len);
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
  }
}
