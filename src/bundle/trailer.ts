/**
 * The trailer's fixed header and table entries, each described once (field, offset, kind) and used
 * by both sides: `encodeTrailer` (the writer and slim bundles' memory index) and `readTrailerTables`
 * (structure.ts, which then validates every value). docs/bundle-format.md has the same tables; the
 * offsets here are the only place the code spells them.
 */
import type { ByteReader } from '../formats/byte-reader';
import { EntryCodec, type EntryValues, type Fields } from '../formats/record';
import {
  DIGEST_SIZE,
  FRAME_ENTRY_SIZE,
  PAGE_ENTRY_SIZE,
  RANGE_ENTRY_SIZE,
  SECTION_ENTRY_SIZE,
  TRAILER_HEADER_SIZE,
  trailerLayout,
  type TrailerCounts,
} from './format';

/** Trailer header (32 bytes): the counts every table size follows from; 28..32 reserved (zero). */
export const TRAILER_HEADER = new EntryCodec(TRAILER_HEADER_SIZE, {
  sections: { at: 0, kind: 'u32' },
  ranges: { at: 4, kind: 'u32' },
  frames: { at: 8, kind: 'u32' },
  slots: { at: 12, kind: 'u32' },
  pages: { at: 16, kind: 'u64' },
  stringsLength: { at: 24, kind: 'u32' },
});

/** Section entry (64 bytes); 28..32 reserved (zero). */
export const SECTION_ENTRY = new EntryCodec(SECTION_ENTRY_SIZE, {
  offset: { at: 0, kind: 'u64' },
  length: { at: 8, kind: 'u64' },
  type: { at: 16, kind: 'u32' },
  nameOffset: { at: 20, kind: 'u32' },
  nameLength: { at: 24, kind: 'u32' },
  sha256: { at: 32, kind: 'digest' },
});

/** Memory range entry (40 bytes). */
export const RANGE_ENTRY = new EntryCodec(RANGE_ENTRY_SIZE, {
  start: { at: 0, kind: 'u64' },
  length: { at: 8, kind: 'u64' },
  firstPage: { at: 16, kind: 'u64' },
  zeroPages: { at: 24, kind: 'u64' },
  nameOffset: { at: 32, kind: 'u32' },
  nameLength: { at: 36, kind: 'u32' },
});

/** Frame entry (56 bytes). */
export const FRAME_ENTRY = new EntryCodec(FRAME_ENTRY_SIZE, {
  offset: { at: 0, kind: 'u64' },
  compressedLength: { at: 8, kind: 'u32' },
  uncompressedLength: { at: 12, kind: 'u32' },
  firstSlot: { at: 16, kind: 'u32' },
  slotCount: { at: 20, kind: 'u32' },
  sha256: { at: 24, kind: 'digest' },
});

export type TrailerHeaderValues = EntryValues<typeof TRAILER_HEADER.fields>;
export type SectionValues = EntryValues<typeof SECTION_ENTRY.fields>;
export type RangeValues = EntryValues<typeof RANGE_ENTRY.fields>;
export type FrameValues = EntryValues<typeof FRAME_ENTRY.fields>;

/** Everything a trailer holds, as stored (names as string-table references). */
export interface TrailerTables {
  sections: SectionValues[];
  ranges: RangeValues[];
  frames: FrameValues[];
  /** P page-index entries. */
  pageIndex: ArrayLike<number>;
  /** U × 32 bytes. */
  digests: Buffer;
  slots: number;
  strings: Buffer;
}

/** The counts of a trailer's header (no validation: structure.ts checks them against the length). */
export function readTrailerHeader(t: ByteReader): TrailerHeaderValues {
  return TRAILER_HEADER.read(t, 0);
}

/** Table entries of a trailer whose length was already checked against its counts. */
export function readTrailerEntries(t: ByteReader, counts: TrailerCounts): { sections: SectionValues[]; ranges: RangeValues[]; frames: FrameValues[] } {
  const layout = trailerLayout(counts);
  const table = <F extends Fields>(codec: EntryCodec<F>, start: number, n: number): Array<EntryValues<F>> =>
    Array.from({ length: n }, (_, i) => codec.read(t, start + i * codec.size));
  return {
    sections: table(SECTION_ENTRY, layout.sections, counts.sections),
    ranges: table(RANGE_ENTRY, layout.ranges, counts.ranges),
    frames: table(FRAME_ENTRY, layout.frames, counts.frames),
  };
}

/** Encodes a complete trailer (or a memory-index payload: no sections, no frames) into one buffer. */
export function encodeTrailer(tables: TrailerTables): Buffer {
  return Buffer.concat(trailerParts(tables));
}

/**
 * The trailer as consecutive parts — the header and small tables, the page index, the slot digests,
 * the string table — whose concatenation is encodeTrailer()'s result. The two big parts are views
 * of the caller's memory where the host allows (little-endian), so a writer can emit a 4 GiB
 * guest's 36 MiB trailer without assembling a copy of it.
 */
export function trailerParts(tables: TrailerTables): Buffer[] {
  const pages = tables.pageIndex.length;
  const counts: TrailerCounts = {
    sections: tables.sections.length,
    ranges: tables.ranges.length,
    frames: tables.frames.length,
    slots: tables.slots,
    pages,
    stringsLength: tables.strings.length,
  };
  const layout = trailerLayout(counts);
  const head = Buffer.alloc(layout.pageIndex);
  TRAILER_HEADER.write(head, 0, { ...counts, pages: BigInt(pages) });
  tables.sections.forEach((s, i) => SECTION_ENTRY.write(head, layout.sections + i * SECTION_ENTRY.size, s));
  tables.ranges.forEach((r, i) => RANGE_ENTRY.write(head, layout.ranges + i * RANGE_ENTRY.size, r));
  tables.frames.forEach((f, i) => FRAME_ENTRY.write(head, layout.frames + i * FRAME_ENTRY.size, f));
  const digests = tables.digests.subarray(0, tables.slots * DIGEST_SIZE);
  if (digests.length !== tables.slots * DIGEST_SIZE) throw new Error(`trailer: ${tables.slots} slots but ${tables.digests.length} bytes of digests`);
  return [head, pageIndexBytes(tables.pageIndex), digests, tables.strings];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The page index as stored (u32 little-endian): a view of a Uint32Array on a little-endian host. */
function pageIndexBytes(index: TrailerTables['pageIndex']): Buffer {
  if (index instanceof Uint32Array && LITTLE_ENDIAN) return Buffer.from(index.buffer, index.byteOffset, index.length * PAGE_ENTRY_SIZE);
  const out = Buffer.alloc(index.length * PAGE_ENTRY_SIZE);
  for (let i = 0; i < index.length; i++) out.writeUInt32LE(index[i]!, i * PAGE_ENTRY_SIZE);
  return out;
}

/** Collects names into a string table: "" and undefined take no bytes and encode as offset 0, length 0. */
export class StringTable {
  private readonly parts: Buffer[] = [];
  private length = 0;
  add(s: string | undefined): { nameOffset: number; nameLength: number } {
    if (s === undefined || s === '') return { nameOffset: 0, nameLength: 0 };
    const b = Buffer.from(s, 'utf8');
    this.parts.push(b);
    this.length += b.length;
    return { nameOffset: this.length - b.length, nameLength: b.length };
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}
