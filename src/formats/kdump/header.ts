/**
 * makedumpfile's kdump-compressed format ("KDUMP   " disk_dump_header, version 6), as makedumpfile
 * (diskdump_mod.h), QEMU (include/sysemu/dump.h DiskDumpHeader64 / KdumpSubHeader64) and crash
 * (diskdump.h) define it, 64-bit little-endian flavour:
 *
 *   block 0                 disk_dump_header (464 bytes used)
 *   block 1 .. sub_hdr_size kdump_sub_header (112 bytes), then the ELF notes (offset_note/size_note;
 *                           the VMCOREINFO note's desc is at offset_vmcoreinfo/size_vmcoreinfo)
 *   bitmap_blocks blocks    bitmap 1 (page exists) then bitmap 2 (page dumped), half each, bit = pfn
 *   page descriptors        24 bytes per dumped page in pfn order: {u64 offset, u32 size, u32 flags,
 *                           u64 page_flags}; several may share one offset (QEMU's zero page)
 *   page data               each page zlib/lzo/snappy/zstd-compressed, or raw when flags = 0
 */
import { ByteReader } from '../byte-reader';
import { FormatError } from '../errors';
import { EntryCodec, type FieldSpec } from '../record';

const FORMAT = 'kdump';

export const KDUMP_SIGNATURE = 'KDUMP   ';
export const DISK_DUMP_HEADER_SIZE = 464;
export const SUB_HEADER_SIZE = 112;
export const PAGE_DESC_SIZE = 24;
export const UTSNAME_FIELD = 65;

/** Page descriptor flags (and header status bits) for the compression of a page. */
export const DUMP_DH_COMPRESSED_ZLIB = 0x1;
export const DUMP_DH_COMPRESSED_LZO = 0x2;
export const DUMP_DH_COMPRESSED_SNAPPY = 0x4;
/** Header status: the dump was cut short (makedumpfile ran out of space). */
export const DUMP_DH_COMPRESSED_INCOMPLETE = 0x8;
export const DUMP_DH_EXCLUDED_VMEMMAP = 0x10;
export const DUMP_DH_COMPRESSED_ZSTD = 0x20;

export interface Utsname {
  sysname: string;
  nodename: string;
  release: string;
  version: string;
  machine: string;
  domainname: string;
}

export interface DiskDumpHeader {
  headerVersion: number;
  utsname: Utsname;
  timestampSec: bigint;
  status: number;
  blockSize: number;
  subHdrSize: number;
  bitmapBlocks: number;
  maxMapnr32: number;
  nrCpus: number;
}

export interface KdumpSubHeader {
  /** Two's complement: Linux's phys_base may be "negative" with KASLR. */
  physBase: bigint;
  dumpLevel: number;
  split: number;
  offsetVmcoreinfo: bigint;
  sizeVmcoreinfo: bigint;
  offsetNote: bigint;
  sizeNote: bigint;
  startPfn64: bigint;
  endPfn64: bigint;
  maxMapnr64: bigint;
}

const UTS_FIELDS: Array<keyof Utsname> = ['sysname', 'nodename', 'release', 'version', 'machine', 'domainname'];
const uts = (i: number): { at: number; kind: 'latin1'; size: number } => ({ at: 12 + i * UTSNAME_FIELD, kind: 'latin1', size: UTSNAME_FIELD });

/**
 * disk_dump_header after its 8-byte signature (diskdump_mod.h): the new_utsname fields, then struct
 * timeval at 408 (after the 6 padding bytes that align it; tv_usec at 416 is left zero).
 */
export const DISK_DUMP_HEADER = new EntryCodec(DISK_DUMP_HEADER_SIZE, {
  headerVersion: { at: 8, kind: 'u32' },
  sysname: uts(0),
  nodename: uts(1),
  release: uts(2),
  version: uts(3),
  machine: uts(4),
  domainname: uts(5),
  timestampSec: { at: 408, kind: 'u64' },
  status: { at: 424, kind: 'u32' },
  blockSize: { at: 428, kind: 'u32' },
  subHdrSize: { at: 432, kind: 'u32' },
  bitmapBlocks: { at: 436, kind: 'u32' },
  maxMapnr32: { at: 440, kind: 'u32' },
  nrCpus: { at: 460, kind: 'u32' },
});

/** kdump_sub_header; `since`: the header_version that added the field (older files read it as absent). */
export const KDUMP_SUB_HEADER = new EntryCodec(SUB_HEADER_SIZE, {
  physBase: { at: 0, kind: 'i64' },
  dumpLevel: { at: 8, kind: 'u32', since: 1 },
  split: { at: 12, kind: 'u32', since: 2 },
  /** Obsolete 32-bit start_pfn/end_pfn: written for old readers, derived from the 64-bit ones. */
  startPfn: { at: 16, kind: 'u64', since: 2 },
  endPfn: { at: 24, kind: 'u64', since: 2 },
  offsetVmcoreinfo: { at: 32, kind: 'u64', since: 3 },
  sizeVmcoreinfo: { at: 40, kind: 'u64', since: 3 },
  offsetNote: { at: 48, kind: 'u64', since: 4 },
  sizeNote: { at: 56, kind: 'u64', since: 4 },
  offsetEraseinfo: { at: 64, kind: 'u64', since: 5 },
  sizeEraseinfo: { at: 72, kind: 'u64', since: 5 },
  startPfn64: { at: 80, kind: 'u64', since: 6 },
  endPfn64: { at: 88, kind: 'u64', since: 6 },
  maxMapnr64: { at: 96, kind: 'u64', since: 6 },
});

/** page_desc_t: one per dumped page; page_flags is always written zero. */
export const PAGE_DESC = new EntryCodec(PAGE_DESC_SIZE, {
  offset: { at: 0, kind: 'i64' },
  size: { at: 8, kind: 'u32' },
  flags: { at: 12, kind: 'u32' },
  pageFlags: { at: 16, kind: 'u64' },
});

export function encodeDiskDumpHeader(h: DiskDumpHeader): Buffer {
  const b = Buffer.alloc(DISK_DUMP_HEADER_SIZE);
  b.write(KDUMP_SIGNATURE, 0, 'latin1');
  DISK_DUMP_HEADER.write(b, 0, { ...h, ...h.utsname });
  return b;
}

export function parseDiskDumpHeader(b: Buffer, file?: string): DiskDumpHeader {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file });
  r.need(0, DISK_DUMP_HEADER_SIZE, 'disk_dump_header');
  const sig = r.bytes(0, 8, 'signature').toString('latin1');
  if (sig !== KDUMP_SIGNATURE) throw new FormatError({ format: FORMAT, file, offset: 0, field: 'signature', problem: `signature ${JSON.stringify(sig)} is not "KDUMP   "` });
  const v = DISK_DUMP_HEADER.read(r, 0);
  const utsname = Object.fromEntries(UTS_FIELDS.map((f) => [f, v[f]])) as unknown as Utsname;
  return {
    headerVersion: v.headerVersion,
    utsname,
    timestampSec: v.timestampSec,
    status: v.status,
    blockSize: v.blockSize,
    subHdrSize: v.subHdrSize,
    bitmapBlocks: v.bitmapBlocks,
    maxMapnr32: v.maxMapnr32,
    nrCpus: v.nrCpus,
  };
}

export function encodeSubHeader(s: KdumpSubHeader): Buffer {
  const b = Buffer.alloc(SUB_HEADER_SIZE);
  KDUMP_SUB_HEADER.write(b, 0, {
    ...s,
    startPfn: s.startPfn64 > 0xffffffffn ? 0n : s.startPfn64,
    endPfn: s.endPfn64 > 0xffffffffn ? 0xffffffffn : s.endPfn64,
    offsetEraseinfo: 0n,
    sizeEraseinfo: 0n,
  });
  return b;
}

/** Parses the sub-header (at `base` in the file); fields newer than `headerVersion` read as absent (0). */
export function parseSubHeader(b: Buffer, headerVersion: number, maxMapnr32: number, base = 0, file?: string): KdumpSubHeader {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file, base });
  r.need(0, SUB_HEADER_SIZE, 'kdump_sub_header');
  const v = KDUMP_SUB_HEADER.read(r, 0);
  const has = (f: keyof typeof KDUMP_SUB_HEADER.fields): boolean => headerVersion >= ((KDUMP_SUB_HEADER.fields[f] as FieldSpec).since ?? 0);
  const n = <K extends 'dumpLevel' | 'split'>(f: K): number => (has(f) ? v[f] : 0);
  const big = (f: 'offsetVmcoreinfo' | 'sizeVmcoreinfo' | 'offsetNote' | 'sizeNote' | 'startPfn64', absent = 0n): bigint => (has(f) ? v[f] : absent);
  return {
    physBase: v.physBase,
    dumpLevel: n('dumpLevel'),
    split: n('split'),
    offsetVmcoreinfo: big('offsetVmcoreinfo'),
    sizeVmcoreinfo: big('sizeVmcoreinfo'),
    offsetNote: big('offsetNote'),
    sizeNote: big('sizeNote'),
    startPfn64: big('startPfn64'),
    endPfn64: has('endPfn64') ? v.endPfn64 : BigInt(maxMapnr32),
    maxMapnr64: has('maxMapnr64') ? v.maxMapnr64 : BigInt(maxMapnr32),
  };
}

export interface PageDesc {
  offset: bigint;
  size: number;
  flags: number;
}

export function encodePageDesc(b: Buffer, at: number, d: PageDesc): void {
  PAGE_DESC.write(b, at, { ...d, pageFlags: 0n });
}

export function parsePageDesc(b: Buffer, base: number, file?: string): PageDesc {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file, base });
  const { offset, size, flags } = PAGE_DESC.read(r, 0);
  return { offset, size, flags };
}

/** Bytes of one bitmap for `maxMapnr` pages, rounded up to whole blocks (QEMU's len_dump_bitmap). */
export function bitmapBytes(maxMapnr: bigint, blockSize: number): bigint {
  const bytes = (maxMapnr + 7n) / 8n;
  const bs = BigInt(blockSize);
  return ((bytes + bs - 1n) / bs) * bs;
}
