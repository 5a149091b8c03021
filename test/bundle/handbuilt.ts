/**
 * Builds bundles byte by byte from docs/bundle-format.md, independently of src/bundle/writer.ts, so
 * tests can check the reader against the spec and craft hostile files. Only the zstd frames come
 * from a standard zstd encoder.
 */
import { createHash } from 'node:crypto';

export interface HandSection {
  name: string;
  type: number; // 1 json, 2 raw, anything else: unknown
  data: Buffer;
}

export interface HandRange {
  start: bigint;
  length: bigint;
  /** One entry per index page: a slot number, or 'zero'. */
  pages: Array<number | 'zero'>;
  name?: string;
}

export interface HandFrame {
  /** Uncompressed pages of this frame (4096 bytes each), in slot order. */
  pages: Buffer[];
  /** A zstd frame holding exactly those pages, with its content size. */
  compressed: Buffer;
}

export interface HandBundle {
  sections: HandSection[];
  ranges: HandRange[];
  frames: HandFrame[];
  major?: number;
  minor?: number;
  /** Called with the finished trailer before digests are computed, to craft hostile values. */
  editTrailer?: (trailer: Buffer) => Buffer;
}

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
function u64(v: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

export function buildBundle(spec: HandBundle): Buffer {
  const major = spec.major ?? 1;
  const minor = spec.minor ?? 0;
  const header = Buffer.concat([Buffer.from([0x89, 0x56, 0x4d, 0x50, 0x4d, 0x0d, 0x0a, 0x1a]), u16(major), u16(minor), u32(0), u32(32), u32(4096), u64(0)]);
  const body: Buffer[] = [header];
  let offset = header.length;
  const strings: Buffer[] = [];
  let stringsLength = 0;
  const str = (s: string | undefined): [number, number] => {
    if (!s) return [0, 0];
    const b = Buffer.from(s, 'utf8');
    strings.push(b);
    stringsLength += b.length;
    return [stringsLength - b.length, b.length];
  };
  const sectionEntries: Buffer[] = [];
  for (const s of spec.sections) {
    const [no, nl] = str(s.name);
    sectionEntries.push(Buffer.concat([u64(offset), u64(s.data.length), u32(s.type), u32(no), u32(nl), u32(0), sha(s.data)]));
    body.push(s.data);
    offset += s.data.length;
  }
  const frameEntries: Buffer[] = [];
  const digests: Buffer[] = [];
  let slot = 0;
  for (const f of spec.frames) {
    frameEntries.push(Buffer.concat([u64(offset), u32(f.compressed.length), u32(f.pages.length * 4096), u32(slot), u32(f.pages.length), sha(f.compressed)]));
    for (const p of f.pages) digests.push(sha(p));
    slot += f.pages.length;
    body.push(f.compressed);
    offset += f.compressed.length;
  }
  const rangeEntries: Buffer[] = [];
  const pageIndex: Buffer[] = [];
  let firstPage = 0;
  for (const r of spec.ranges) {
    const [no, nl] = str(r.name);
    const zeros = r.pages.filter((p) => p === 'zero').length;
    rangeEntries.push(Buffer.concat([u64(r.start), u64(r.length), u64(firstPage), u64(zeros), u32(no), u32(nl)]));
    for (const p of r.pages) pageIndex.push(u32(p === 'zero' ? 0xffffffff : p));
    firstPage += r.pages.length;
  }
  const trailerHeader = Buffer.concat([
    u32(spec.sections.length),
    u32(spec.ranges.length),
    u32(spec.frames.length),
    u32(slot),
    u64(firstPage),
    u32(stringsLength),
    u32(0),
  ]);
  let trailer: Buffer = Buffer.concat([trailerHeader, ...sectionEntries, ...rangeEntries, ...frameEntries, ...pageIndex, ...digests, ...strings]);
  if (spec.editTrailer) trailer = spec.editTrailer(trailer);
  body.push(trailer);
  const before = Buffer.concat(body);
  const footer = Buffer.concat([
    u64(offset),
    u64(trailer.length),
    sha(trailer),
    sha(before),
    u16(major),
    u16(minor),
    u32(0),
    Buffer.from('VMPMEND\n', 'latin1'),
  ]);
  return Buffer.concat([before, footer]);
}
