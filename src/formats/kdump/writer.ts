/**
 * Layout of a kdump-compressed file vmpm writes (see header.ts for the format): one 4 KiB block of
 * disk_dump_header, the sub-header with the ELF notes right after it (as QEMU lays them out), both
 * bitmaps (identical: every captured page exists and is dumped), one page descriptor per captured
 * page, then the page data. The caller streams descriptors and data; this module computes offsets,
 * encodes the head and the bitmaps.
 */
import { VmpmError } from '../../util/errors';
import {
  bitmapBytes,
  encodeDiskDumpHeader,
  encodeSubHeader,
  PAGE_DESC_SIZE,
  SUB_HEADER_SIZE,
  type Utsname,
} from './header';

export const KDUMP_BLOCK = 4096;

export interface PfnRange {
  /** First pfn. */
  start: bigint;
  /** Page count. */
  pages: bigint;
}

export interface KdumpLayoutInput {
  ranges: PfnRange[];
  notes: Buffer;
  /** Where the VMCOREINFO note's desc lies inside `notes`, if there is one. */
  vmcoreinfo?: { offset: number; size: number };
  utsname: Utsname;
  timestampSec: bigint;
  nrCpus: number;
  physBase: bigint;
  /** Header status: the compression used (DUMP_DH_COMPRESSED_*). */
  status: number;
}

export interface KdumpLayout {
  head: Buffer;
  maxMapnr: bigint;
  bitmapOffset: bigint;
  /** Bytes of one bitmap (the second follows the first). */
  bitmapLength: bigint;
  descOffset: bigint;
  dataOffset: bigint;
  pages: bigint;
}

export function layoutKdump(input: KdumpLayoutInput): KdumpLayout {
  const bs = KDUMP_BLOCK;
  const sorted = [...input.ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
  let maxMapnr = 0n;
  let pages = 0n;
  for (const r of sorted) {
    if (r.start < maxMapnr) throw new VmpmError('kdump export: memory ranges overlap');
    maxMapnr = r.start + r.pages;
    pages += r.pages;
  }
  const subBytes = SUB_HEADER_SIZE + input.notes.length;
  const subHdrSize = Math.ceil(subBytes / bs);
  const bitmapLength = bitmapBytes(maxMapnr, bs);
  const bitmapBlocks = (2n * bitmapLength) / BigInt(bs);
  if (bitmapBlocks > 0xffffffffn) throw new VmpmError('kdump export: the bitmap is larger than the format can describe');
  const bitmapOffset = BigInt((1 + subHdrSize) * bs);
  const descOffset = bitmapOffset + 2n * bitmapLength;
  const dataOffset = descOffset + pages * BigInt(PAGE_DESC_SIZE);

  const head = Buffer.alloc((1 + subHdrSize) * bs);
  encodeDiskDumpHeader({
    headerVersion: 6,
    utsname: input.utsname,
    timestampSec: input.timestampSec,
    status: input.status,
    blockSize: bs,
    subHdrSize,
    bitmapBlocks: Number(bitmapBlocks),
    maxMapnr32: Number(maxMapnr > 0xffffffffn ? 0xffffffffn : maxMapnr),
    nrCpus: input.nrCpus,
  }).copy(head, 0);
  const offsetNote = BigInt(bs + SUB_HEADER_SIZE);
  encodeSubHeader({
    physBase: input.physBase,
    dumpLevel: 0,
    split: 0,
    offsetVmcoreinfo: input.vmcoreinfo ? offsetNote + BigInt(input.vmcoreinfo.offset) : 0n,
    sizeVmcoreinfo: input.vmcoreinfo ? BigInt(input.vmcoreinfo.size) : 0n,
    offsetNote,
    sizeNote: BigInt(input.notes.length),
    startPfn64: 0n,
    endPfn64: maxMapnr,
    maxMapnr64: maxMapnr,
  }).copy(head, bs);
  input.notes.copy(head, Number(offsetNote));
  return { head, maxMapnr, bitmapOffset, bitmapLength, descOffset, dataOffset, pages };
}

/** Bytes [byteOffset, byteOffset + n) of the bitmap with a bit set for every pfn in `ranges`. */
export function bitmapSlice(ranges: readonly PfnRange[], byteOffset: bigint, n: number): Buffer {
  const out = Buffer.alloc(n);
  const first = byteOffset * 8n;
  const last = first + BigInt(n) * 8n;
  for (const r of ranges) {
    const from = r.start > first ? r.start : first;
    const to = r.start + r.pages < last ? r.start + r.pages : last;
    for (let pfn = from; pfn < to; ) {
      const bit = Number(pfn - first);
      // Whole bytes at a time where the range covers them.
      if ((bit & 7) === 0 && to - pfn >= 8n) {
        const bytes = Number((to - pfn) / 8n);
        out.fill(0xff, bit >> 3, (bit >> 3) + bytes);
        pfn += BigInt(bytes * 8);
        continue;
      }
      out[bit >> 3]! |= 1 << (bit & 7);
      pfn++;
    }
  }
  return out;
}
