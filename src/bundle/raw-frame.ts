/**
 * Incompressible pages (encrypted or already-compressed data) are not worth a compressor's time: a
 * zstd frame may hold "raw" blocks (RFC 8878 3.1.1.2: Block_Type 0, the bytes stored as they are), so
 * such pages go into frames of raw blocks, which stock `zstd -d` and zstd-codec decode like any
 * other frame. Which pages: a cheap estimate (a census of distinct byte values) on a sample, run by the
 * compression workers while they hash.
 */

const ZSTD_MAGIC = 0xfd2fb528;
/** Block_Maximum_Size: min(Window_Size, 128 KiB). */
const MAX_BLOCK = 128 * 1024;
/** Frame header: magic, descriptor (FCS 4 bytes, single segment, no checksum, no dictionary), FCS. */
const HEADER_BYTES = 4 + 1 + 4;

/** Size of the raw frame rawFrame() makes for `n` bytes. */
export function rawFrameSize(n: number): number {
  return HEADER_BYTES + Math.max(1, Math.ceil(n / MAX_BLOCK)) * 3 + n;
}

/**
 * A standard zstd frame holding `data` (1 byte .. 4 GiB - 1) in raw blocks: single-segment (the
 * window is the content size, which the header records), no checksum (the bundle has its own digests).
 */
export function rawFrame(data: Uint8Array): Buffer {
  const n = data.length;
  if (n < 1 || n > 0xffffffff) throw new RangeError(`raw frame of ${n} bytes`);
  const out = Buffer.allocUnsafeSlow(rawFrameSize(n));
  out.writeUInt32LE(ZSTD_MAGIC, 0);
  // Frame_Header_Descriptor: FCS_Field_Size flag 2 (4 bytes) << 6 | Single_Segment_flag 0x20.
  out[4] = (2 << 6) | 0x20;
  out.writeUInt32LE(n, 5);
  let at = HEADER_BYTES;
  for (let off = 0; off < n; off += MAX_BLOCK) {
    const size = Math.min(MAX_BLOCK, n - off);
    const last = off + size >= n ? 1 : 0;
    // Block_Header, 3 bytes little-endian: Block_Size << 3 | Block_Type (0 = raw) << 1 | Last_Block.
    const header = (size << 3) | last;
    out[at] = header & 0xff;
    out[at + 1] = (header >>> 8) & 0xff;
    out[at + 2] = (header >>> 16) & 0xff;
    out.set(data.subarray(off, off + size), at + 3);
    at += 3 + size;
  }
  return out;
}

/** Bytes of a page the estimate looks at: two runs of this length (start and middle of the page). */
const SAMPLE = 128;
/**
 * Distinct byte values in the 256-byte sample above which a page is taken as incompressible. Random
 * bytes give ~162 distinct values in 256 (256 * (1 - (255/256)^256)); text gives under 60, pointer-
 * heavy data and half-zero data under ~110 (measured on the bench guest's page kinds).
 */
export const INCOMPRESSIBLE_DISTINCT = 140;

const seen = new Uint8Array(256);

/** True when the page at buf[off..off+4096) looks incompressible (a byte census of 256 sampled bytes). */
export function looksIncompressible(buf: Uint8Array, off: number): boolean {
  seen.fill(0);
  let distinct = 0;
  for (let i = off; i < off + SAMPLE; i++) {
    const b = buf[i]!;
    distinct += 1 - seen[b]!;
    seen[b] = 1;
  }
  for (let i = off + 2048; i < off + 2048 + SAMPLE; i++) {
    const b = buf[i]!;
    distinct += 1 - seen[b]!;
    seen[b] = 1;
  }
  return distinct > INCOMPRESSIBLE_DISTINCT;
}

/** One byte per 4 KiB page of `data`: 1 when the page looks incompressible. */
export function estimatePages(data: Uint8Array): Uint8Array {
  const pages = Math.floor(data.length / 4096);
  const out = new Uint8Array(pages);
  for (let i = 0; i < pages; i++) out[i] = looksIncompressible(data, i * 4096) ? 1 : 0;
  return out;
}

/**
 * The content of `frame` when it is a zstd frame made only of raw blocks, copied out with no decoder
 * call (readers: codec.ts decompressFrame); undefined when it is anything else, and then the real
 * decoder decides (and reports corruption as it always did). Strict: it accepts only what it can
 * prove the decoder would return byte for byte, the frames rawFrame() writes and their kin:
 * single-segment header (the window is the content size), no dictionary ID, no checksum, reserved and
 * unused descriptor bits clear, content size equal to `expectedSize`; then raw blocks (type 0) of at
 * most 128 KiB each, every header and size bounds-checked against the frame, whose sizes add up to
 * exactly `expectedSize`, the last one flagged last and ending exactly at the end of `frame` (no
 * trailing bytes: the decoder would read them as another frame). Anything else (compressed or RLE
 * blocks, a checksum it does not verify, a size that does not add up) is left to the decoder.
 */
export function rawFrameContent(frame: Uint8Array, expectedSize: number): Buffer | undefined {
  const len = frame.length;
  if (len < 6 || !Number.isInteger(expectedSize) || expectedSize < 1) return undefined;
  if ((frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24)) >>> 0 !== ZSTD_MAGIC) return undefined;
  const d = frame[4]!;
  // Single_Segment (0x20) set; Unused (0x10), Reserved (0x08), Content_Checksum (0x04), Dictionary_ID (0x03) clear.
  if ((d & 0x3f) !== 0x20) return undefined;
  const fcsFlag = d >>> 6;
  let at = 5;
  let fcs: number;
  if (fcsFlag === 0) {
    fcs = frame[at]!;
    at += 1;
  } else if (fcsFlag === 1) {
    if (len < at + 2) return undefined;
    fcs = (frame[at]! | (frame[at + 1]! << 8)) + 256;
    at += 2;
  } else if (fcsFlag === 2) {
    if (len < at + 4) return undefined;
    fcs = (frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16) | (frame[at + 3]! << 24)) >>> 0;
    at += 4;
  } else {
    if (len < at + 8) return undefined;
    const hi = (frame[at + 4]! | (frame[at + 5]! << 8) | (frame[at + 6]! << 16) | (frame[at + 7]! << 24)) >>> 0;
    if (hi !== 0) return undefined;
    fcs = (frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16) | (frame[at + 3]! << 24)) >>> 0;
    at += 8;
  }
  if (fcs !== expectedSize) return undefined;
  // First pass: check every block header before allocating or copying anything.
  let total = 0;
  let pos = at;
  for (;;) {
    if (pos + 3 > len) return undefined;
    const h = frame[pos]! | (frame[pos + 1]! << 8) | (frame[pos + 2]! << 16);
    if ((h & 0x06) !== 0) return undefined; // Block_Type other than raw
    const size = h >>> 3;
    if (size > MAX_BLOCK || pos + 3 + size > len) return undefined;
    total += size;
    if (total > expectedSize) return undefined;
    pos += 3 + size;
    if (h & 1) break;
  }
  if (pos !== len || total !== expectedSize) return undefined;
  const out = Buffer.allocUnsafeSlow(expectedSize);
  let o = 0;
  pos = at;
  for (;;) {
    const h = frame[pos]! | (frame[pos + 1]! << 8) | (frame[pos + 2]! << 16);
    const size = h >>> 3;
    out.set(frame.subarray(pos + 3, pos + 3 + size), o);
    o += size;
    pos += 3 + size;
    if (h & 1) break;
  }
  return out;
}
