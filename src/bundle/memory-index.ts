/**
 * The memory-index section of a slim bundle (format 1.1, docs/bundle-format.md "Slim bundles"):
 * the memory tables of a trailer — ranges, page index, slot digests, range names — without the
 * pages. Its payload uses the trailer's own layout with no sections and no frames, so one parser
 * (parseTrailer) validates both.
 */
import { BundleFormatError } from './errors';
import { DIGEST_SIZE, MEMORY_INDEX_SECTION, PAGE_ENTRY_SIZE, RANGE_ENTRY_SIZE, type RangeEntry, SECTION_TYPE_MEMORY_INDEX, trailerLayout } from './format';
import { sha256 } from './pages';
import { parseTrailer, type Structure } from './structure';

export interface MemoryTables {
  /** In page-index order. */
  ranges: RangeEntry[];
  pageIndex: Uint32Array;
  /** slotCount × 32 bytes. */
  digests: Buffer;
  slotCount: number;
}

export function encodeMemoryIndex(m: MemoryTables): Buffer {
  const names = m.ranges.map((r) => (r.name ? Buffer.from(r.name, 'utf8') : Buffer.alloc(0)));
  const stringsLength = names.reduce((a, n) => a + n.length, 0);
  const layout = trailerLayout({ sections: 0, ranges: m.ranges.length, frames: 0, slots: m.slotCount, pages: m.pageIndex.length, stringsLength });
  const t = Buffer.alloc(layout.total);
  t.writeUInt32LE(m.ranges.length, 4);
  t.writeUInt32LE(m.slotCount, 12);
  t.writeBigUInt64LE(BigInt(m.pageIndex.length), 16);
  t.writeUInt32LE(stringsLength, 24);
  let nameAt = 0;
  m.ranges.forEach((r, i) => {
    const o = layout.ranges + i * RANGE_ENTRY_SIZE;
    t.writeBigUInt64LE(r.start, o);
    t.writeBigUInt64LE(r.length, o + 8);
    t.writeBigUInt64LE(BigInt(r.firstPage), o + 16);
    t.writeBigUInt64LE(BigInt(r.zeroPages), o + 24);
    const n = names[i]!;
    t.writeUInt32LE(n.length ? nameAt : 0, o + 32);
    t.writeUInt32LE(n.length, o + 36);
    n.copy(t, layout.strings + nameAt);
    nameAt += n.length;
  });
  for (let i = 0; i < m.pageIndex.length; i++) t.writeUInt32LE(m.pageIndex[i]!, layout.pageIndex + i * PAGE_ENTRY_SIZE);
  m.digests.copy(t, layout.digests, 0, m.slotCount * DIGEST_SIZE);
  return t;
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
