/**
 * The one bounds-checked reader every parser in src/formats reads a buffer through (in the spirit of
 * strtok3's tokenizers): integers of either byte order at an offset relative to the reader's window,
 * sub-windows, and a cursor. No length or offset read from the input is trusted: every access is
 * checked against the window first and fails as a FormatError naming the field and its absolute offset,
 * never as a RangeError from Buffer or an out-of-bounds read.
 */
import { FormatError } from './errors';

export { FormatError, type FormatErrorFields } from './errors';

export interface ByteReaderOptions {
  /** Format name for errors ("ELF notes"). */
  format: string;
  littleEndian: boolean;
  file?: string | undefined;
  /** Offset of this window's byte 0 in the whole input, so errors report absolute offsets. */
  base?: number;
}

export class ByteReader {
  readonly buf: Buffer;
  readonly littleEndian: boolean;
  readonly format: string;
  readonly file: string | undefined;
  /** Absolute offset of buf[0]. */
  readonly base: number;
  /** Cursor for the sequential reads (`next*`); relative to the window. */
  pos = 0;

  constructor(buf: Buffer, options: ByteReaderOptions) {
    this.buf = buf;
    this.littleEndian = options.littleEndian;
    this.format = options.format;
    this.file = options.file;
    this.base = options.base ?? 0;
  }

  get length(): number {
    return this.buf.length;
  }

  /** Bytes from the cursor to the end of the window. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** A FormatError at `at` (relative to the window) about `field`. */
  error(problem: string, at?: number, field?: string): FormatError {
    return new FormatError({ format: this.format, problem, file: this.file, offset: at === undefined ? undefined : this.base + at, field });
  }

  /** True when `length` bytes at `at` lie inside the window (overflow-safe for any numbers). */
  has(at: number, length: number): boolean {
    return Number.isSafeInteger(at) && Number.isSafeInteger(length) && at >= 0 && length >= 0 && length <= this.buf.length - at;
  }

  /** Throws unless `length` bytes at `at` lie inside the window. */
  need(at: number, length: number, field: string): void {
    if (!this.has(at, length)) {
      throw this.error(`${field} (${length} bytes at offset ${this.base + at}) is past the end of the ${this.buf.length}-byte input`, at, field);
    }
  }

  u8(at: number, field = 'u8'): number {
    this.need(at, 1, field);
    return this.buf[at]!;
  }
  u16(at: number, field = 'u16'): number {
    this.need(at, 2, field);
    return this.littleEndian ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }
  u32(at: number, field = 'u32'): number {
    this.need(at, 4, field);
    return this.littleEndian ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }
  u64(at: number, field = 'u64'): bigint {
    this.need(at, 8, field);
    return this.littleEndian ? this.buf.readBigUInt64LE(at) : this.buf.readBigUInt64BE(at);
  }
  /** A u64 that must fit a JavaScript number (offsets and sizes used for indexing). */
  u64Number(at: number, field = 'u64'): number {
    const v = this.u64(at, field);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.error(`${field} ${v} is too large`, at, field);
    return Number(v);
  }

  /** A view (not a copy) of `length` bytes at `at`. */
  bytes(at: number, length: number, field = 'bytes'): Buffer {
    this.need(at, length, field);
    return this.buf.subarray(at, at + length);
  }

  /** A reader over `length` bytes at `at`, reporting absolute offsets. */
  sub(at: number, length: number, field = 'bytes', format = this.format): ByteReader {
    return new ByteReader(this.bytes(at, length, field), { format, littleEndian: this.littleEndian, base: this.base + at, file: this.file });
  }

  /** Sequential reads at the cursor, advancing it. */
  nextU16(field?: string): number {
    const v = this.u16(this.pos, field);
    this.pos += 2;
    return v;
  }
  nextU32(field?: string): number {
    const v = this.u32(this.pos, field);
    this.pos += 4;
    return v;
  }
  nextU64(field?: string): bigint {
    const v = this.u64(this.pos, field);
    this.pos += 8;
    return v;
  }
  nextBytes(length: number, field?: string): Buffer {
    const v = this.bytes(this.pos, length, field);
    this.pos += length;
    return v;
  }
}
