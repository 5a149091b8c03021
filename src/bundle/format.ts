/**
 * Byte layout of bundle format v1 (docs/bundle-format.md is the normative description; this file
 * and the doc must agree). All integers are little-endian. Shared by writer, reader and verify.
 */
import { ByteReader } from '../formats/byte-reader';
import { EntryCodec } from '../formats/record';

export const PAGE_SIZE = 4096;
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;

/** "\x89VMPM\r\n\x1a": the high byte and CR/LF/^Z catch text-mode and 7-bit transfers, as PNG does. */
export const HEADER_MAGIC = Buffer.from([0x89, 0x56, 0x4d, 0x50, 0x4d, 0x0d, 0x0a, 0x1a]);
/** "VMPMEND\n": the last 8 bytes of every complete bundle. */
export const FOOTER_MAGIC = Buffer.from('VMPMEND\n', 'latin1');

export const HEADER_SIZE = 32;
export const FOOTER_SIZE = 96;
export const TRAILER_HEADER_SIZE = 32;
export const SECTION_ENTRY_SIZE = 64;
export const RANGE_ENTRY_SIZE = 40;
export const FRAME_ENTRY_SIZE = 56;
export const PAGE_ENTRY_SIZE = 4;
export const DIGEST_SIZE = 32;

/** Page-index value of an all-zero page (never stored). */
export const ZERO_SLOT = 0xffffffff;
/** Slots are u32 and ZERO_SLOT is reserved. */
export const MAX_SLOTS = 0xffffffff;

export const SECTION_TYPE_JSON = 1;
export const SECTION_TYPE_RAW = 2;
/**
 * Format 1.1 (slim bundles): a section holding the memory tables (ranges, page index, page digests)
 * without the pages themselves. 1.0 readers skip the unknown type and see a bundle without memory.
 */
export const SECTION_TYPE_MEMORY_INDEX = 3;
export const MEMORY_INDEX_SECTION = 'memory-index';
/** Header flag (format 1.1): memory contents are absent; the memory-index section describes the pages. */
export const FLAG_DIGESTS_ONLY = 1;
export const FORMAT_MINOR_DIGESTS_ONLY = 1;

/** Limits a reader enforces before allocating (documented in docs/bundle-format.md). */
export const MAX_NAME_BYTES = 1024;
export const MAX_TRAILER_BYTES = 2 ** 31 - 1;
export const MAX_SECTION_BYTES = 2 ** 31 - 1;

/** The fixed header after its 8-byte magic (docs/bundle-format.md "Header"); 24..32 reserved (zero). */
export const BUNDLE_HEADER = new EntryCodec(HEADER_SIZE, {
  major: { at: 8, kind: 'u16' },
  minor: { at: 10, kind: 'u16' },
  flags: { at: 12, kind: 'u32' },
  headerSize: { at: 16, kind: 'u32' },
  pageSize: { at: 20, kind: 'u32' },
});

export function encodeHeader(version: { minor: number; flags: number } = { minor: FORMAT_MINOR, flags: 0 }): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  HEADER_MAGIC.copy(b, 0);
  BUNDLE_HEADER.write(b, 0, { major: FORMAT_MAJOR, minor: version.minor, flags: version.flags, headerSize: HEADER_SIZE, pageSize: PAGE_SIZE });
  return b;
}

export interface Footer {
  trailerOffset: bigint;
  trailerLength: bigint;
  trailerSha256: Buffer;
  fileSha256: Buffer;
  major: number;
  minor: number;
  reserved: number;
}

/** The footer before its 8-byte magic at 88 (docs/bundle-format.md "Footer"). */
export const FOOTER = new EntryCodec(FOOTER_SIZE, {
  trailerOffset: { at: 0, kind: 'u64' },
  trailerLength: { at: 8, kind: 'u64' },
  trailerSha256: { at: 16, kind: 'digest' },
  fileSha256: { at: 48, kind: 'digest' },
  major: { at: 80, kind: 'u16' },
  minor: { at: 82, kind: 'u16' },
  reserved: { at: 84, kind: 'u32' },
});

export function encodeFooter(f: Omit<Footer, 'major' | 'minor' | 'reserved'>, minor = FORMAT_MINOR): Buffer {
  const b = Buffer.alloc(FOOTER_SIZE);
  FOOTER.write(b, 0, { ...f, major: FORMAT_MAJOR, minor, reserved: 0 });
  FOOTER_MAGIC.copy(b, 88);
  return b;
}

/** The footer's fields (the magic is checked by the caller); digests are copies. */
export function decodeFooter(b: Buffer, file?: string, base = 0): Footer {
  const f = FOOTER.read(bundleBytes(b, 'footer', file, base), 0);
  return { ...f, trailerSha256: Buffer.from(f.trailerSha256), fileSha256: Buffer.from(f.fileSha256) };
}

export interface SectionEntry {
  name: string;
  type: number;
  offset: number;
  length: number;
  sha256: Buffer;
}

export interface RangeEntry {
  start: bigint;
  length: bigint;
  firstPage: number;
  pages: number;
  zeroPages: number;
  name?: string;
}

export interface FrameEntry {
  offset: number;
  compressedLength: number;
  uncompressedLength: number;
  firstSlot: number;
  slotCount: number;
  sha256: Buffer;
}

/** Number of index pages a range of `length` bytes occupies (a partial last page counts, zero-padded). */
export function pagesOf(length: bigint): bigint {
  return (length + BigInt(PAGE_SIZE) - 1n) / BigInt(PAGE_SIZE);
}

/** The trailer's fixed header: the counts every table size is derived from. */
export interface TrailerCounts {
  sections: number;
  ranges: number;
  frames: number;
  slots: number;
  pages: number;
  stringsLength: number;
}

/** Byte offsets of each table inside the trailer, and its total length, derived from the counts. */
export function trailerLayout(c: TrailerCounts): {
  sections: number;
  ranges: number;
  frames: number;
  pageIndex: number;
  digests: number;
  strings: number;
  total: number;
} {
  const sections = TRAILER_HEADER_SIZE;
  const ranges = sections + c.sections * SECTION_ENTRY_SIZE;
  const frames = ranges + c.ranges * RANGE_ENTRY_SIZE;
  const pageIndex = frames + c.frames * FRAME_ENTRY_SIZE;
  const digests = pageIndex + c.pages * PAGE_ENTRY_SIZE;
  const strings = digests + c.slots * DIGEST_SIZE;
  const total = strings + c.stringsLength;
  return { sections, ranges, frames, pageIndex, digests, strings, total };
}

/** A little-endian reader over a bundle structure buffer, reporting offsets within the file (`base`). */
export function bundleBytes(b: Buffer, what: string, file?: string, base = 0): ByteReader {
  return new ByteReader(b, { format: `vmpm bundle ${what}`, littleEndian: true, file, base });
}
