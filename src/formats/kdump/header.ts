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

export function encodeDiskDumpHeader(h: DiskDumpHeader): Buffer {
  const b = Buffer.alloc(DISK_DUMP_HEADER_SIZE);
  b.write(KDUMP_SIGNATURE, 0, 'latin1');
  b.writeUInt32LE(h.headerVersion, 8);
  UTS_FIELDS.forEach((f, i) => b.write(h.utsname[f].slice(0, UTSNAME_FIELD - 1), 12 + i * UTSNAME_FIELD, 'latin1'));
  // struct timeval at 408 (after the 6 padding bytes that align it): tv_sec, tv_usec.
  b.writeBigUInt64LE(h.timestampSec, 408);
  b.writeUInt32LE(h.status, 424);
  b.writeUInt32LE(h.blockSize, 428);
  b.writeUInt32LE(h.subHdrSize, 432);
  b.writeUInt32LE(h.bitmapBlocks, 436);
  b.writeUInt32LE(h.maxMapnr32, 440);
  b.writeUInt32LE(h.nrCpus, 460);
  return b;
}

export function parseDiskDumpHeader(b: Buffer, file?: string): DiskDumpHeader {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file });
  r.need(0, DISK_DUMP_HEADER_SIZE, 'disk_dump_header');
  const sig = r.bytes(0, 8, 'signature').toString('latin1');
  if (sig !== KDUMP_SIGNATURE) throw new FormatError({ format: FORMAT, file, offset: 0, field: 'signature', problem: `signature ${JSON.stringify(sig)} is not "KDUMP   "` });
  const str = (at: number, field: string): string => {
    const raw = r.bytes(at, UTSNAME_FIELD, field);
    const nul = raw.indexOf(0);
    return raw.toString('latin1', 0, nul < 0 ? raw.length : nul);
  };
  const utsname = Object.fromEntries(UTS_FIELDS.map((f, i) => [f, str(12 + i * UTSNAME_FIELD, `utsname.${f}`)])) as unknown as Utsname;
  return {
    headerVersion: r.u32(8, 'header_version'),
    utsname,
    timestampSec: r.u64(408, 'timestamp'),
    status: r.u32(424, 'status'),
    blockSize: r.u32(428, 'block_size'),
    subHdrSize: r.u32(432, 'sub_hdr_size'),
    bitmapBlocks: r.u32(436, 'bitmap_blocks'),
    maxMapnr32: r.u32(440, 'max_mapnr'),
    nrCpus: r.u32(460, 'nr_cpus'),
  };
}

export function encodeSubHeader(s: KdumpSubHeader): Buffer {
  const b = Buffer.alloc(SUB_HEADER_SIZE);
  b.writeBigUInt64LE(BigInt.asUintN(64, s.physBase), 0);
  b.writeUInt32LE(s.dumpLevel, 8);
  b.writeUInt32LE(s.split, 12);
  b.writeBigUInt64LE(s.startPfn64 > 0xffffffffn ? 0n : s.startPfn64, 16); // start_pfn (obsolete 32-bit)
  b.writeBigUInt64LE(s.endPfn64 > 0xffffffffn ? 0xffffffffn : s.endPfn64, 24); // end_pfn (obsolete)
  b.writeBigUInt64LE(s.offsetVmcoreinfo, 32);
  b.writeBigUInt64LE(s.sizeVmcoreinfo, 40);
  b.writeBigUInt64LE(s.offsetNote, 48);
  b.writeBigUInt64LE(s.sizeNote, 56);
  // offset_eraseinfo, size_eraseinfo at 64, 72: none.
  b.writeBigUInt64LE(s.startPfn64, 80);
  b.writeBigUInt64LE(s.endPfn64, 88);
  b.writeBigUInt64LE(s.maxMapnr64, 96);
  return b;
}

/** Parses the sub-header (at `base` in the file); fields newer than `headerVersion` read as absent (0). */
export function parseSubHeader(b: Buffer, headerVersion: number, maxMapnr32: number, base = 0, file?: string): KdumpSubHeader {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file, base });
  r.need(0, SUB_HEADER_SIZE, 'kdump_sub_header');
  const v = headerVersion;
  return {
    physBase: BigInt.asIntN(64, r.u64(0, 'phys_base')),
    dumpLevel: v >= 1 ? r.u32(8, 'dump_level') : 0,
    split: v >= 2 ? r.u32(12, 'split') : 0,
    offsetVmcoreinfo: v >= 3 ? r.u64(32, 'offset_vmcoreinfo') : 0n,
    sizeVmcoreinfo: v >= 3 ? r.u64(40, 'size_vmcoreinfo') : 0n,
    offsetNote: v >= 4 ? r.u64(48, 'offset_note') : 0n,
    sizeNote: v >= 4 ? r.u64(56, 'size_note') : 0n,
    startPfn64: v >= 6 ? r.u64(80, 'start_pfn_64') : 0n,
    endPfn64: v >= 6 ? r.u64(88, 'end_pfn_64') : BigInt(maxMapnr32),
    maxMapnr64: v >= 6 ? r.u64(96, 'max_mapnr_64') : BigInt(maxMapnr32),
  };
}

export interface PageDesc {
  offset: bigint;
  size: number;
  flags: number;
}

export function encodePageDesc(b: Buffer, at: number, d: PageDesc): void {
  b.writeBigUInt64LE(d.offset, at);
  b.writeUInt32LE(d.size, at + 8);
  b.writeUInt32LE(d.flags, at + 12);
  b.writeBigUInt64LE(0n, at + 16);
}

export function parsePageDesc(b: Buffer, base: number, file?: string): PageDesc {
  const r = new ByteReader(b, { format: FORMAT, littleEndian: true, file, base });
  return { offset: BigInt.asIntN(64, r.u64(0, 'page_desc.offset')), size: r.u32(8, 'page_desc.size'), flags: r.u32(12, 'page_desc.flags') };
}

/** Bytes of one bitmap for `maxMapnr` pages, rounded up to whole blocks (QEMU's len_dump_bitmap). */
export function bitmapBytes(maxMapnr: bigint, blockSize: number): bigint {
  const bytes = (maxMapnr + 7n) / 8n;
  const bs = BigInt(blockSize);
  return ((bytes + bs - 1n) / bs) * bs;
}
