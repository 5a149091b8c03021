/**
 * The memory-index section of a slim bundle (format 1.1, docs/bundle-format.md "Slim bundles"):
 * the memory tables of a trailer — ranges, page index, slot digests, range names — without the
 * pages. Its plain form uses the trailer's own layout with no sections and no frames, so one parser
 * (parseTrailer) validates both. vmpm writes it compressed (zstd frames behind a small frame table,
 * the page index stored as byte planes so that runs of slot numbers compress); readers take both.
 */
import { compressFrame, decompressFrame, MAX_FRAME_INPUT } from './codec';
import { BundleFormatError, CodecError } from './errors';
import { MAX_TRAILER_BYTES, MEMORY_INDEX_SECTION, PAGE_ENTRY_SIZE, type RangeEntry, SECTION_TYPE_MEMORY_INDEX, TRAILER_HEADER_SIZE, trailerLayout } from './format';
import { sha256 } from './pages';
import { parseTrailer, type Structure } from './structure';
import { encodeTrailer, readTrailerHeader, StringTable } from './trailer';

export interface MemoryTables {
  /** In page-index order. */
  ranges: RangeEntry[];
  pageIndex: Uint32Array;
  /** slotCount × 32 bytes. */
  digests: Buffer;
  slotCount: number;
}

/** The first 8 bytes of the compressed form (a plain memory index starts with S = 0). */
export const MEMORY_INDEX_MAGIC = Buffer.from('VMPMIDXZ', 'latin1');
/** Magic, u64 plain length, u32 frame count, u32 reserved. */
const HEAD_SIZE = 24;
/** Per frame: u32 compressed length, u32 plain length. */
const FRAME_ROW_SIZE = 8;
/** Plain bytes per frame vmpm writes (readers accept 1 .. MAX_FRAME_INPUT). */
const FRAME_PLAIN = 1 << 20;
/** Digests do not compress; the page index (byte planes) compresses well at any level. */
const LEVEL = 3;

/** The plain form: the trailer layout with S = 0 and F = 0. */
export function encodeMemoryIndex(m: MemoryTables): Buffer {
  const strings = new StringTable();
  const ranges = m.ranges.map((r) => ({
    start: r.start,
    length: r.length,
    firstPage: BigInt(r.firstPage),
    zeroPages: BigInt(r.zeroPages),
    ...strings.add(r.name),
  }));
  return encodeTrailer({ sections: [], ranges, frames: [], pageIndex: m.pageIndex, digests: m.digests, slots: m.slotCount, strings: strings.bytes() });
}

/** The compressed form of a plain memory index (what `vmpm slim` writes). */
export async function compressMemoryIndex(plain: Buffer): Promise<Buffer> {
  const planes = Buffer.from(plain);
  const { at, count } = pageIndexRegion(plain, plain.length);
  toPlanes(plain.subarray(at, at + count * PAGE_ENTRY_SIZE), planes.subarray(at, at + count * PAGE_ENTRY_SIZE));
  const frames: Buffer[] = [];
  for (let off = 0; off < planes.length; off += FRAME_PLAIN) frames.push(await compressFrame(planes.subarray(off, Math.min(planes.length, off + FRAME_PLAIN)), LEVEL));
  const head = Buffer.alloc(HEAD_SIZE + frames.length * FRAME_ROW_SIZE);
  MEMORY_INDEX_MAGIC.copy(head, 0);
  head.writeBigUInt64LE(BigInt(plain.length), 8);
  head.writeUInt32LE(frames.length, 16);
  frames.forEach((f, i) => {
    head.writeUInt32LE(f.length, HEAD_SIZE + i * FRAME_ROW_SIZE);
    head.writeUInt32LE(Math.min(FRAME_PLAIN, plain.length - i * FRAME_PLAIN), HEAD_SIZE + i * FRAME_ROW_SIZE + 4);
  });
  return Buffer.concat([head, ...frames]);
}

/** The plain memory index of a section payload in either form; `where` names the bundle in errors. */
export async function plainMemoryIndex(where: string, payload: Buffer): Promise<Buffer> {
  if (payload.length < MEMORY_INDEX_MAGIC.length || !payload.subarray(0, MEMORY_INDEX_MAGIC.length).equals(MEMORY_INDEX_MAGIC)) return payload;
  const bad = (what: string): BundleFormatError => new BundleFormatError(`${where}: compressed memory index: ${what}`);
  if (payload.length < HEAD_SIZE) throw bad(`${payload.length} bytes, shorter than its ${HEAD_SIZE}-byte header`);
  const plainLength = payload.readBigUInt64LE(8);
  const count = payload.readUInt32LE(16);
  if (payload.readUInt32LE(20) !== 0) throw bad('reserved header field is not 0');
  if (plainLength < BigInt(TRAILER_HEADER_SIZE) || plainLength > BigInt(MAX_TRAILER_BYTES)) {
    throw bad(`plain length ${plainLength} is outside ${TRAILER_HEADER_SIZE}..${MAX_TRAILER_BYTES}`);
  }
  const framesAt = HEAD_SIZE + count * FRAME_ROW_SIZE;
  if (count === 0 || framesAt > payload.length) throw bad(`${count} frames do not fit a ${payload.length}-byte section`);
  let compressed = 0;
  let plain = 0;
  for (let i = 0; i < count; i++) {
    const c = payload.readUInt32LE(HEAD_SIZE + i * FRAME_ROW_SIZE);
    const n = payload.readUInt32LE(HEAD_SIZE + i * FRAME_ROW_SIZE + 4);
    if (c === 0 || n === 0 || n > MAX_FRAME_INPUT) throw bad(`frame ${i}: ${c} bytes compressed, ${n} plain (expected 1.. and 1..${MAX_FRAME_INPUT})`);
    compressed += c;
    plain += n;
  }
  if (framesAt + compressed !== payload.length) throw bad(`frame table adds up to ${framesAt + compressed} bytes, the section has ${payload.length}`);
  if (BigInt(plain) !== plainLength) throw bad(`frames hold ${plain} plain bytes, the header says ${plainLength}`);
  // Not zero-filled: every byte is written below, and memory is only touched as frames decompress.
  const planes = Buffer.allocUnsafeSlow(plain);
  let from = framesAt;
  let to = 0;
  for (let i = 0; i < count; i++) {
    const c = payload.readUInt32LE(HEAD_SIZE + i * FRAME_ROW_SIZE);
    const n = payload.readUInt32LE(HEAD_SIZE + i * FRAME_ROW_SIZE + 4);
    let out: Buffer;
    try {
      out = await decompressFrame(payload.subarray(from, from + c), n);
    } catch (err) {
      if (err instanceof CodecError) throw bad(`frame ${i}: ${err.message}`);
      throw err;
    }
    out.copy(planes, to);
    from += c;
    to += n;
  }
  const { at, count: pages } = pageIndexRegion(planes, plain, bad);
  const region = planes.subarray(at, at + pages * PAGE_ENTRY_SIZE);
  fromPlanes(Buffer.from(region), region);
  return planes;
}

/** Where the page index lies in a plain memory index (from its trailer header), checked against `length`. */
function pageIndexRegion(t: Buffer, length: number, bad?: (what: string) => Error): { at: number; count: number } {
  const h = readTrailerHeader(t);
  if (h.pages * BigInt(PAGE_ENTRY_SIZE) > BigInt(length)) {
    throw (bad ?? ((w: string) => new Error(w)))(`trailer header counts ${h.pages} pages, more than ${length} bytes can hold`);
  }
  const layout = trailerLayout({ ...h, pages: Number(h.pages) });
  if (layout.total !== length) throw (bad ?? ((w: string) => new Error(w)))(`trailer header counts add up to ${layout.total} bytes, the index has ${length}`);
  return { at: layout.pageIndex, count: Number(h.pages) };
}

/** Byte j (little-endian) of entry i goes to j·count + i: four byte planes of `count` bytes each. */
function toPlanes(entries: Buffer, planes: Buffer): void {
  const count = entries.length / PAGE_ENTRY_SIZE;
  for (let i = 0; i < count; i++) for (let j = 0; j < 4; j++) planes[j * count + i] = entries[4 * i + j]!;
}

function fromPlanes(planes: Buffer, entries: Buffer): void {
  const count = entries.length / PAGE_ENTRY_SIZE;
  for (let i = 0; i < count; i++) for (let j = 0; j < 4; j++) entries[4 * i + j] = planes[j * count + i]!;
}

/**
 * If `s` has a memory-index section, returns the structure with the index's memory tables in place
 * of the (empty) trailer ones, and `digestsOnly` true. The section is digest-checked and validated
 * like a trailer; a bundle with both a memory index and memory of its own is refused.
 */
export async function withMemoryIndex(
  where: string,
  s: Structure,
  headerSize: number,
  bodyEnd: number,
  read: (offset: number, length: number) => Promise<Buffer>,
): Promise<{ structure: Structure; digestsOnly: boolean }> {
  const entry = s.unknownSections.find((e) => e.type === SECTION_TYPE_MEMORY_INDEX && e.name === MEMORY_INDEX_SECTION);
  if (!entry) return { structure: s, digestsOnly: false };
  if (s.ranges.length || s.frames.length || s.pageIndex.length || s.slotCount) {
    throw new BundleFormatError(`${where}: has a memory-index section and memory ranges of its own (a slim bundle has no memory)`);
  }
  const payload = await read(entry.offset, entry.length);
  const d = sha256(payload);
  if (!d.equals(entry.sha256)) {
    throw new BundleFormatError(`${where}: section "${entry.name}" SHA-256 mismatch: index says ${entry.sha256.toString('hex')}, data hashes to ${d.toString('hex')}`);
  }
  const m = parseTrailer(where, await plainMemoryIndex(where, payload), headerSize, bodyEnd, { memoryIndex: true });
  return { structure: { ...s, ranges: m.ranges, pageIndex: m.pageIndex, digests: m.digests, slotCount: m.slotCount }, digestsOnly: true };
}
