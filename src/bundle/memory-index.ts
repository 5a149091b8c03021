/**
 * The memory-index section of a slim bundle (format 1.1, docs/bundle-format.md "Slim bundles"):
 * the memory tables of a trailer — ranges, page index, slot digests, range names — without the
 * pages. Its payload uses the trailer's own layout with no sections and no frames, so one parser
 * (parseTrailer) validates both.
 */
import { BundleFormatError } from './errors';
import { MEMORY_INDEX_SECTION, type RangeEntry, SECTION_TYPE_MEMORY_INDEX } from './format';
import { sha256 } from './pages';
import { parseTrailer, type Structure } from './structure';
import { encodeTrailer, StringTable } from './trailer';

export interface MemoryTables {
  /** In page-index order. */
  ranges: RangeEntry[];
  pageIndex: Uint32Array;
  /** slotCount × 32 bytes. */
  digests: Buffer;
  slotCount: number;
}

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
  const m = parseTrailer(where, payload, headerSize, bodyEnd, { memoryIndex: true });
  return { structure: { ...s, ranges: m.ranges, pageIndex: m.pageIndex, digests: m.digests, slotCount: m.slotCount }, digestsOnly: true };
}
