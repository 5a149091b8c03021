/**
 * Decodes and validates the fixed header, the footer and the trailer of a bundle. Every count,
 * offset and length is checked against the file size and the format's limits before it is used,
 * so a hostile file cannot make the reader allocate or read more than the file holds.
 */
import { toHex } from '../util/hex';
import { compressBound, MAX_FRAME_INPUT } from './codec';
import { BundleFormatError } from './errors';
import type { ByteReader } from '../formats/byte-reader';
import { type FrameValues, type RangeValues, readTrailerEntries, readTrailerHeader, type SectionValues } from './trailer';
import {
  BUNDLE_HEADER,
  bundleBytes,
  decodeFooter,
  DIGEST_SIZE,
  type Footer,
  FOOTER_MAGIC,
  FOOTER_SIZE,
  FORMAT_MAJOR,
  type FrameEntry,
  HEADER_MAGIC,
  HEADER_SIZE,
  MAX_NAME_BYTES,
  MAX_SECTION_BYTES,
  MAX_TRAILER_BYTES,
  PAGE_ENTRY_SIZE,
  PAGE_SIZE,
  pagesOf,
  type RangeEntry,
  type SectionEntry,
  SECTION_TYPE_JSON,
  SECTION_TYPE_RAW,
  TRAILER_HEADER_SIZE,
  trailerLayout,
  ZERO_SLOT,
} from './format';

export interface HeaderInfo {
  major: number;
  minor: number;
  flags: number;
  headerSize: number;
}

const MAX_ADDRESS = 1n << 64n;

function hex(b: Buffer): string {
  return b.toString('hex');
}

/** Checks the first HEADER_SIZE bytes. `where` prefixes messages (the file path). */
export function parseHeader(where: string, b: Buffer, fileSize: number): HeaderInfo {
  const r = bundleBytes(b, 'header', where);
  const magic = r.bytes(0, HEADER_MAGIC.length, 'magic');
  if (!magic.equals(HEADER_MAGIC)) {
    throw new BundleFormatError(`${where}: not a vmpm bundle (header magic is ${hex(magic)}, expected ${hex(HEADER_MAGIC)})`);
  }
  const { major, minor, flags, headerSize, pageSize } = BUNDLE_HEADER.read(r, 0);
  if (major > FORMAT_MAJOR) {
    throw new BundleFormatError(
      `${where}: bundle format version ${major}.${minor} is newer than this vmpm reads (format ${FORMAT_MAJOR}.x); upgrade vmpm`,
    );
  }
  if (major < 1) throw new BundleFormatError(`${where}: bundle format version ${major}.${minor} is not supported (this vmpm reads ${FORMAT_MAJOR}.x)`);
  if (headerSize < HEADER_SIZE || headerSize > fileSize - FOOTER_SIZE) {
    throw new BundleFormatError(`${where}: header size ${headerSize} is invalid (expected at least ${HEADER_SIZE} and within the file)`);
  }
  if (pageSize !== PAGE_SIZE) throw new BundleFormatError(`${where}: page size ${pageSize} is not supported (expected ${PAGE_SIZE})`);
  return { major, minor, flags, headerSize };
}

/** Checks the last FOOTER_SIZE bytes against the header and the file size. */
export function parseFooter(where: string, b: Buffer, fileSize: number, header: HeaderInfo): Footer {
  const footerAt = fileSize - FOOTER_SIZE;
  const magic = bundleBytes(b, 'footer', where, footerAt).bytes(88, FOOTER_MAGIC.length, 'magic');
  if (!magic.equals(FOOTER_MAGIC)) {
    throw new BundleFormatError(
      `${where}: no bundle footer at offset ${footerAt} (found ${hex(magic)}, expected ${hex(FOOTER_MAGIC)}): the file is truncated or was not finished`,
    );
  }
  const f = decodeFooter(b, where, footerAt);
  if (f.major !== header.major || f.minor !== header.minor) {
    throw new BundleFormatError(`${where}: footer says format ${f.major}.${f.minor} but the header says ${header.major}.${header.minor}`);
  }
  if (f.reserved !== 0) throw new BundleFormatError(`${where}: footer reserved field is ${f.reserved}, expected 0`);
  if (f.trailerLength < BigInt(TRAILER_HEADER_SIZE) || f.trailerLength > BigInt(MAX_TRAILER_BYTES)) {
    throw new BundleFormatError(`${where}: footer trailer length ${f.trailerLength} is out of bounds (${TRAILER_HEADER_SIZE}..${MAX_TRAILER_BYTES})`);
  }
  if (f.trailerOffset < BigInt(header.headerSize) || f.trailerOffset + f.trailerLength !== BigInt(footerAt)) {
    throw new BundleFormatError(
      `${where}: footer places the trailer at ${f.trailerOffset}+${f.trailerLength}, but it must end where the footer starts (offset ${footerAt}) and start after the header`,
    );
  }
  return f;
}

export interface Structure {
  sections: SectionEntry[];
  /** In file order (the page index order). */
  ranges: RangeEntry[];
  frames: FrameEntry[];
  pageIndex: Uint32Array;
  /** Slot digests, 32 bytes each. */
  digests: Buffer;
  slotCount: number;
  /** Sections of types this reader does not know: hidden from callers, but their digests are still verified. */
  unknownSections: SectionEntry[];
}

/** What every table check needs: message prefix, name lookup, body bounds. */
interface TrailerContext {
  at: (what: string) => string;
  nameAt: (what: string, off: number, len: number, required: boolean) => string | undefined;
  inBody: (what: string, offset: bigint, length: bigint) => void;
}

function trailerContext(at: (what: string) => string, strings: Buffer, headerSize: number, bodyEnd: number): TrailerContext {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  return {
    at,
    nameAt: (what, off, len, required) => {
      if (len === 0 && !required) return undefined;
      if (len === 0 || len > MAX_NAME_BYTES || off + len > strings.length) {
        throw new BundleFormatError(at(`${what} name at ${off}+${len} is outside the ${strings.length}-byte string table or not 1..${MAX_NAME_BYTES} bytes`));
      }
      try {
        return decoder.decode(strings.subarray(off, off + len));
      } catch {
        throw new BundleFormatError(at(`${what} name is not valid UTF-8`));
      }
    },
    inBody: (what, offset, length) => {
      if (offset < BigInt(headerSize) || offset + length > BigInt(bodyEnd)) {
        throw new BundleFormatError(at(`${what} at offset ${offset}, ${length} bytes, lies outside the body (${headerSize}..${bodyEnd})`));
      }
    },
  };
}

/**
 * Decodes the trailer (already digest-checked) and validates every entry against `bodyEnd` (= trailer offset).
 * `memoryIndex`: `t` is a slim bundle's memory-index section (trailer layout, no sections, no frames:
 * its slots have digests but no stored content).
 */
export function parseTrailer(where: string, t: Buffer, headerSize: number, bodyEnd: number, options: { memoryIndex?: boolean } = {}): Structure {
  const at = (what: string): string => `${where}: ${options.memoryIndex ? 'memory-index section' : 'trailer'} ${what}`;
  if (t.length < TRAILER_HEADER_SIZE) throw new BundleFormatError(at(`is ${t.length} bytes, shorter than its ${TRAILER_HEADER_SIZE}-byte header`));
  const r = bundleBytes(t, options.memoryIndex ? 'memory-index section' : 'trailer', where, options.memoryIndex ? 0 : bodyEnd);
  const head = readTrailerHeader(r);
  const { sections: sectionCount, ranges: rangeCount, frames: frameCount, slots: slotCount, pages: pageCountBig, stringsLength } = head;
  if (slotCount === ZERO_SLOT) throw new BundleFormatError(at(`slot count ${slotCount} is reserved`));
  if (options.memoryIndex && (sectionCount !== 0 || frameCount !== 0)) {
    throw new BundleFormatError(at(`declares ${sectionCount} sections and ${frameCount} frames; a memory index has neither`));
  }
  if (pageCountBig > BigInt(Math.floor(t.length / PAGE_ENTRY_SIZE))) {
    throw new BundleFormatError(at(`page count ${pageCountBig} does not fit a ${t.length}-byte trailer`));
  }
  const pageCount = Number(pageCountBig);
  const counts = { sections: sectionCount, ranges: rangeCount, frames: frameCount, slots: slotCount, pages: pageCount, stringsLength };
  const layout = trailerLayout(counts);
  if (layout.total !== t.length) {
    throw new BundleFormatError(
      at(
        `is ${t.length} bytes but its counts (${sectionCount} sections, ${rangeCount} ranges, ${frameCount} frames, ${slotCount} slots, ${pageCount} pages, ${stringsLength} string bytes) need ${layout.total}`,
      ),
    );
  }
  const entries = readTrailerEntries(r, counts);
  const cx = trailerContext(at, r.bytes(layout.strings, stringsLength, 'string table'), headerSize, bodyEnd);
  const { sections, unknownSections } = checkSections(cx, entries.sections);
  const pageIndex = readPageIndex(r, layout.pageIndex, pageCount);
  for (let i = 0; i < pageCount; i++) {
    const v = pageIndex[i]!;
    if (v >= slotCount && v !== ZERO_SLOT) {
      throw new BundleFormatError(at(`page index entry ${i} refers to slot ${v}, but there are ${slotCount} slots`));
    }
  }
  const ranges = checkRanges(cx, entries.ranges, pageIndex);
  const frames = checkFrames(cx, entries.frames, slotCount, options.memoryIndex === true);
  const digests = r.bytes(layout.digests, slotCount * DIGEST_SIZE, 'slot digests');
  return { sections, ranges, frames, pageIndex, digests, slotCount, unknownSections };
}

function checkSections(cx: TrailerContext, list: SectionValues[]): { sections: SectionEntry[]; unknownSections: SectionEntry[] } {
  const sections: SectionEntry[] = [];
  const seen = new Set<string>();
  const unknownSections: SectionEntry[] = [];
  list.forEach((e, i) => {
    const { offset, length, type } = e;
    const name = cx.nameAt(`section ${i}`, e.nameOffset, e.nameLength, true)!;
    cx.inBody(`section "${name}"`, offset, length);
    if (length > BigInt(MAX_SECTION_BYTES)) throw new BundleFormatError(cx.at(`section "${name}" is ${length} bytes, over the ${MAX_SECTION_BYTES}-byte limit`));
    if (seen.has(name)) throw new BundleFormatError(cx.at(`has two sections named "${name}"`));
    seen.add(name);
    const entry: SectionEntry = { name, type, offset: Number(offset), length: Number(length), sha256: Buffer.from(e.sha256) };
    // A newer minor version's section type: skipped by readers, still covered by verify.
    if (type !== SECTION_TYPE_JSON && type !== SECTION_TYPE_RAW) unknownSections.push(entry);
    else sections.push(entry);
  });
  return { sections, unknownSections };
}

function checkRanges(cx: TrailerContext, list: RangeValues[], pageIndex: Uint32Array): RangeEntry[] {
  const { at } = cx;
  const pageCount = pageIndex.length;
  const ranges: RangeEntry[] = [];
  let nextPage = 0n;
  for (const [i, e] of list.entries()) {
    const { start, length, firstPage, zeroPages } = e;
    const name = cx.nameAt(`range ${i}`, e.nameOffset, e.nameLength, false);
    const label = `range ${i} (${toHex(start)}+${toHex(length)})`;
    if (start % BigInt(PAGE_SIZE) !== 0n) throw new BundleFormatError(at(`${label} does not start on a page boundary`));
    if (start + length > MAX_ADDRESS) throw new BundleFormatError(at(`${label} runs past the 64-bit address space`));
    const pages = pagesOf(length);
    if (firstPage !== nextPage) throw new BundleFormatError(at(`${label} starts at page index ${firstPage}, expected ${nextPage}`));
    if (firstPage + pages > BigInt(pageCount)) {
      throw new BundleFormatError(at(`${label} needs page index entries ${firstPage}..${firstPage + pages}, but there are ${pageCount}`));
    }
    nextPage += pages;
    let zeros = 0;
    for (let p = Number(firstPage); p < Number(firstPage + pages); p++) if (pageIndex[p] === ZERO_SLOT) zeros++;
    if (BigInt(zeros) !== zeroPages) throw new BundleFormatError(at(`${label} declares ${zeroPages} zero pages, its page index has ${zeros}`));
    const entry: RangeEntry = { start, length, firstPage: Number(firstPage), pages: Number(pages), zeroPages: zeros };
    if (name !== undefined) entry.name = name;
    ranges.push(entry);
  }
  if (nextPage !== BigInt(pageCount)) throw new BundleFormatError(at(`ranges cover ${nextPage} pages, but the page index has ${pageCount}`));
  const sorted = [...ranges].filter((r) => r.pages > 0).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (prev.start + BigInt(prev.pages * PAGE_SIZE) > sorted[i]!.start) {
      throw new BundleFormatError(at(`ranges ${toHex(prev.start)}+${toHex(prev.length)} and ${toHex(sorted[i]!.start)}+${toHex(sorted[i]!.length)} overlap`));
    }
  }
  return ranges;
}

function checkFrames(cx: TrailerContext, list: FrameValues[], slotCount: number, memoryIndex: boolean): FrameEntry[] {
  const { at } = cx;
  const frames: FrameEntry[] = [];
  let nextSlot = 0;
  const maxCompressed = compressBound(MAX_FRAME_INPUT);
  for (const [i, e] of list.entries()) {
    const { offset, compressedLength, uncompressedLength, firstSlot, slotCount: slots } = e;
    const label = `frame ${i}`;
    cx.inBody(label, offset, BigInt(compressedLength));
    if (compressedLength === 0 || compressedLength > maxCompressed) {
      throw new BundleFormatError(at(`${label} compressed length ${compressedLength} is out of bounds (1..${maxCompressed})`));
    }
    if (slots === 0 || slots * PAGE_SIZE > MAX_FRAME_INPUT || uncompressedLength !== slots * PAGE_SIZE) {
      throw new BundleFormatError(
        at(`${label} holds ${slots} pages and ${uncompressedLength} bytes; expected 1..${MAX_FRAME_INPUT / PAGE_SIZE} pages of ${PAGE_SIZE} bytes each`),
      );
    }
    if (firstSlot !== nextSlot) throw new BundleFormatError(at(`${label} starts at slot ${firstSlot}, expected ${nextSlot}`));
    nextSlot += slots;
    if (nextSlot > slotCount) throw new BundleFormatError(at(`${label} runs past the ${slotCount} slots`));
    frames.push({ offset: Number(offset), compressedLength, uncompressedLength, firstSlot, slotCount: slots, sha256: Buffer.from(e.sha256) });
  }
  if (nextSlot !== slotCount && !memoryIndex) throw new BundleFormatError(at(`frames hold ${nextSlot} slots, but the digest table has ${slotCount}`));
  return frames;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The page index as u32 values: a zero-copy view when the host is little-endian and the bytes are aligned. */
function readPageIndex(r: ByteReader, offset: number, count: number): Uint32Array {
  const bytes = r.bytes(offset, count * PAGE_ENTRY_SIZE, 'page index');
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, count);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = r.u32(offset + i * PAGE_ENTRY_SIZE, 'page index entry');
  return out;
}
