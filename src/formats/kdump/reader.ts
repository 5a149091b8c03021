/**
 * Bounded reader of a (reassembled) kdump-compressed file: validates the header, sub-header, notes
 * and bitmap placement against the file size before reading anything else, then walks bitmap 2 and
 * the page descriptors in pfn order, handing out each dumped page's stored bytes. Decompression is
 * the caller's (it knows which codecs it has). Memory stays bounded: bitmaps and descriptors are read
 * through a window, never whole.
 */
import { VmpmError } from '../../util/errors';
import { FileWindow } from '../file-window';
import {
  type DiskDumpHeader,
  DISK_DUMP_HEADER_SIZE,
  type KdumpSubHeader,
  PAGE_DESC_SIZE,
  type PageDesc,
  parseDiskDumpHeader,
  parsePageDesc,
  parseSubHeader,
  SUB_HEADER_SIZE,
} from './header';

const MAX_NOTES = 64 * 1024 * 1024;
const BITMAP_CHUNK = 64 * 1024;

export interface KdumpInfo {
  header: DiskDumpHeader;
  sub: KdumpSubHeader;
  blockSize: number;
  maxMapnr: bigint;
  /** The ELF notes QEMU/makedumpfile stored (empty when the header version has none). */
  notes: Buffer;
  /** The VMCOREINFO note's desc as stored (offset_vmcoreinfo), when present. */
  vmcoreinfo?: Buffer;
}

export interface KdumpPage {
  pfn: bigint;
  desc: PageDesc;
  /** The stored bytes (a view valid until the next page is requested). */
  stored: Buffer;
}

export class KdumpReader {
  private constructor(
    readonly info: KdumpInfo,
    private readonly meta: FileWindow,
    private readonly data: FileWindow,
    private readonly bitmapOffset: bigint,
    private readonly bitmapLength: bigint,
  ) {}

  static async open(meta: FileWindow, data: FileWindow): Promise<KdumpReader> {
    const header = parseDiskDumpHeader(await meta.read(0, Math.min(DISK_DUMP_HEADER_SIZE, meta.size), 'disk_dump_header'));
    const bs = header.blockSize;
    if (bs < 4096 || bs > 65536 || (bs & (bs - 1)) !== 0) throw new VmpmError(`kdump: block_size ${bs} is not a page size vmpm reads (4 KiB .. 64 KiB, a power of two)`);
    if (header.headerVersion < 1 || header.headerVersion > 6) throw new VmpmError(`kdump: header_version ${header.headerVersion} is not one vmpm reads (1..6)`);
    const sub = parseSubHeader(await meta.read(bs, SUB_HEADER_SIZE, 'kdump_sub_header'), header.headerVersion, header.maxMapnr32, bs);
    if (sub.split !== 0) throw new VmpmError('kdump: this file is one part of a split dump (makedumpfile --split); reassemble it with makedumpfile --reassemble first');
    if (header.bitmapBlocks === 0 || header.bitmapBlocks % 2 !== 0) throw new VmpmError(`kdump: bitmap_blocks ${header.bitmapBlocks} is not an even, non-zero count`);
    const bitmapOffset = BigInt(1 + header.subHdrSize) * BigInt(bs);
    const bitmapLength = (BigInt(header.bitmapBlocks) / 2n) * BigInt(bs);
    const descOffset = bitmapOffset + 2n * bitmapLength;
    if (descOffset > BigInt(meta.size)) {
      throw new VmpmError(`kdump: sub-header (${header.subHdrSize} blocks) and bitmaps (${header.bitmapBlocks} blocks) end at ${descOffset}, past the end of the ${meta.size}-byte file`);
    }
    const maxMapnr = header.headerVersion >= 6 ? sub.maxMapnr64 : BigInt(header.maxMapnr32);
    if (maxMapnr > bitmapLength * 8n) throw new VmpmError(`kdump: max_mapnr ${maxMapnr} needs more bitmap than the ${bitmapLength} bytes the header declares`);
    let notes = Buffer.alloc(0);
    if (sub.sizeNote > 0n) {
      if (sub.sizeNote > BigInt(MAX_NOTES)) throw new VmpmError(`kdump: ${sub.sizeNote} bytes of ELF notes is implausibly large`);
      notes = Buffer.from(await meta.read(sub.offsetNote, sub.sizeNote, 'ELF notes'));
    }
    const info: KdumpInfo = { header, sub, blockSize: bs, maxMapnr, notes };
    if (sub.sizeVmcoreinfo > 0n) {
      if (sub.sizeVmcoreinfo > BigInt(MAX_NOTES)) throw new VmpmError(`kdump: ${sub.sizeVmcoreinfo} bytes of VMCOREINFO is implausibly large`);
      info.vmcoreinfo = Buffer.from(await meta.read(sub.offsetVmcoreinfo, sub.sizeVmcoreinfo, 'VMCOREINFO'));
    }
    return new KdumpReader(info, meta, data, bitmapOffset, bitmapLength);
  }

  /** Every dumped page in pfn order with its descriptor and stored (still compressed) bytes. */
  async *pages(): AsyncGenerator<KdumpPage> {
    const bs = this.info.blockSize;
    let descPos = this.bitmapOffset + 2n * this.bitmapLength;
    let i = 0;
    for await (const pfn of this.setBits(this.bitmapLength)) {
      const chunk = await this.meta.read(descPos, PAGE_DESC_SIZE, `page descriptor ${i} (pfn ${pfn})`);
      const desc = parsePageDesc(chunk, Number(descPos));
      descPos += BigInt(PAGE_DESC_SIZE);
      i++;
      const limit = desc.flags === 0 ? bs : bs * 2;
      if (desc.size === 0 || desc.size > limit || (desc.flags === 0 && desc.size !== bs)) {
        throw new VmpmError(`kdump: page descriptor for pfn ${pfn} has size ${desc.size} with flags 0x${desc.flags.toString(16)} (block size ${bs})`);
      }
      yield { pfn, desc, stored: await this.data.read(desc.offset, desc.size, `data of pfn ${pfn}`) };
    }
  }

  /** Pfns whose bit is set in the bitmap starting `at` bytes into the bitmap area, below max_mapnr. */
  private async *setBits(at: bigint): AsyncGenerator<bigint> {
    const max = this.info.maxMapnr;
    const bytes = (max + 7n) / 8n;
    for (let off = 0n; off < bytes; off += BigInt(BITMAP_CHUNK)) {
      const n = Number(bytes - off < BigInt(BITMAP_CHUNK) ? bytes - off : BigInt(BITMAP_CHUNK));
      const chunk = Buffer.from(await this.meta.read(this.bitmapOffset + at + off, n, 'bitmap'));
      for (let j = 0; j < n; j++) {
        const byte = chunk[j]!;
        if (byte === 0) continue;
        for (let bit = 0; bit < 8; bit++) {
          if (!(byte & (1 << bit))) continue;
          const pfn = (off + BigInt(j)) * 8n + BigInt(bit);
          if (pfn < max) yield pfn;
        }
      }
    }
  }
}
