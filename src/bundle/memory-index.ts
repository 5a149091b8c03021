/**
 * The memory-index section of a slim bundle (format 1.1, docs/bundle-format.md "Slim bundles"):
 * the memory tables of a trailer — ranges, page index, slot digests, range names — without the
 * pages. Its plain form uses the trailer's own layout with no sections and no frames, so one parser
 * (parseTrailer) validates both. vmpm writes it compressed (zstd frames behind a small frame table,
 * the page index stored as byte planes so that runs of slot numbers compress); readers take both.
 */
import { compressFrame, decompressFrame, MAX_FRAME_INPUT } from './codec';
import { BundleFormatError, CodecError } from './errors';
import { bundleBytes, MAX_TRAILER_BYTES, MEMORY_INDEX_SECTION, PAGE_ENTRY_SIZE, type RangeEntry, SECTION_TYPE_MEMORY_INDEX, TRAILER_HEADER_SIZE, trailerLayout } from './format';
import { sha256 } from './pages';
import { parseTrailer, type Structure } from './structure';
import { readTrailerHeader, StringTable, trailerParts } from './trailer';

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
  return Buffer.concat(plainParts(m));
}

/** The plain form as consecutive parts: header and range table, page index, digests, strings. */
function plainParts(m: MemoryTables): Buffer[] {
  const strings = new StringTable();
  const ranges = m.ranges.map((r) => ({
    start: r.start,
    length: r.length,
    firstPage: BigInt(r.firstPage),
    zeroPages: BigInt(r.zeroPages),
    ...strings.add(r.name),
  }));
  return trailerParts({ sections: [], ranges, frames: [], pageIndex: m.pageIndex, digests: m.digests, slots: m.slotCount, strings: strings.bytes() });
}

/**
 * The compressed form (what `vmpm slim` writes), as parts to write one after the other: the
 * header with the frame table, then the frames. Built 1 MiB at a time from the tables themselves,
 * so besides the frames it holds only the page index's byte planes (4 bytes a page).
 */
export async function compressMemoryIndex(m: MemoryTables): Promise<Buffer[]> {
  const [head, index, ...rest] = plainParts(m);
  const planes = Buffer.allocUnsafe(index!.length);
  toPlanes(index!, planes);
  const parts = [head!, planes, ...rest];
  const plainLength = parts.reduce((n, p) => n + p.length, 0);
  const chunk = Buffer.allocUnsafe(Math.min(FRAME_PLAIN, plainLength));
  const frames: Buffer[] = [];
  const sizes: number[] = [];
  let filled = 0;
  const flush = async (): Promise<void> => {
    frames.push(await compressFrame(chunk.subarray(0, filled), LEVEL));
    sizes.push(filled);
    filled = 0;
  };
  for (const part of parts) {
    for (let off = 0; off < part.length; ) {
      const n = part.copy(chunk, filled, off, Math.min(part.length, off + chunk.length - filled));
      off += n;
      filled += n;
      if (filled === chunk.length) await flush();
    }
  }
  if (filled > 0) await flush();
  const header = Buffer.alloc(HEAD_SIZE + frames.length * FRAME_ROW_SIZE);
  MEMORY_INDEX_MAGIC.copy(header, 0);
  header.writeBigUInt64LE(BigInt(plainLength), 8);
  header.writeUInt32LE(frames.length, 16);
  frames.forEach((f, i) => {
    header.writeUInt32LE(f.length, HEAD_SIZE + i * FRAME_ROW_SIZE);
    header.writeUInt32LE(sizes[i]!, HEAD_SIZE + i * FRAME_ROW_SIZE + 4);
  });
  return [header, ...frames];
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
function pageIndexRegion(t: Buffer, length: number, bad: (what: string) => Error): { at: number; count: number } {
  const h = readTrailerHeader(bundleBytes(t, 'memory-index section'));
  if (h.pages * BigInt(PAGE_ENTRY_SIZE) > BigInt(length)) throw bad(`trailer header counts ${h.pages} pages, more than ${length} bytes can hold`);
  const layout = trailerLayout({ ...h, pages: Number(h.pages) });
  if (layout.total !== length) throw bad(`trailer header counts add up to ${layout.total} bytes, the index has ${length}`);
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
