/**
 * Memory and notes of a kdump-compressed file (makedumpfile's, or QEMU's once reassembled) into a
 * bundle writer. Dumped pages land at pfn * block_size; runs of consecutive dumped pfns become one
 * bundle range; pages a filter excluded (bitmap 2 clear) are holes, never zeros. zlib pages are
 * inflated synchronously (node's async zlib was slower per 4 KiB page); zstd pages through vmpm's
 * zstd codec, a bounded batch in flight.
 * lzo and snappy have no decoder in node: such a file is refused with a line that says so.
 */
import { inflateSync } from 'node:zlib';
import type { BundleWriter, MemoryRangeWriter } from '../bundle';
import { decompressFrame } from '../bundle/codec';
import {
  DUMP_DH_COMPRESSED_INCOMPLETE,
  DUMP_DH_COMPRESSED_LZO,
  DUMP_DH_COMPRESSED_SNAPPY,
  DUMP_DH_COMPRESSED_ZLIB,
  DUMP_DH_COMPRESSED_ZSTD,
} from '../formats/kdump/header';
import { type KdumpInfo, type KdumpPage, KdumpReader } from '../formats/kdump/reader';
import type { FileWindow } from '../formats/file-window';
import { describeError, VmpmError } from '../util/errors';

const BATCH = 256;

export interface KdumpImport {
  info: KdumpInfo;
  ranges: Array<{ start: bigint; length: bigint }>;
  pages: number;
  codecs: Record<string, number>;
  warnings: string[];
}

export async function importKdump(meta: FileWindow, data: FileWindow, writer: BundleWriter, onProgress?: (done: number, total: number) => void): Promise<KdumpImport> {
  const reader = await KdumpReader.open(meta, data);
  const info = reader.info;
  const bs = info.blockSize;
  const warnings: string[] = [];
  if (info.header.status & DUMP_DH_COMPRESSED_INCOMPLETE) warnings.push('the dump is marked incomplete (makedumpfile ran out of space): pages after the cut are missing');
  const codecs: Record<string, number> = { zlib: 0, zstd: 0, raw: 0 };
  const ranges: Array<{ start: bigint; length: bigint }> = [];
  let open: { writer: MemoryRangeWriter; start: bigint; nextPfn: bigint } | undefined;
  let pages = 0;
  const total = Number(info.maxMapnr);

  const place = async (pfn: bigint, page: Buffer): Promise<void> => {
    if (!open || open.nextPfn !== pfn) {
      await closeRange();
      open = { writer: writer.beginMemoryRange(pfn * BigInt(bs)), start: pfn * BigInt(bs), nextPfn: pfn };
    }
    await open.writer.write(page);
    open.nextPfn = pfn + 1n;
    pages++;
    if (onProgress && pages % 4096 === 0) onProgress(Number(pfn), total);
  };
  const closeRange = async (): Promise<void> => {
    if (!open) return;
    const stats = await open.writer.end();
    ranges.push({ start: open.start, length: stats.length });
    open = undefined;
  };

  // Decoded in batches (zlib on the thread pool); the stored bytes are copied because the read window moves.
  let batch: Array<{ pfn: bigint; page: Promise<Buffer> }> = [];
  const drain = async (): Promise<void> => {
    for (const b of batch) await place(b.pfn, await b.page);
    batch = [];
  };
  let lastShared: { offset: bigint; page: Promise<Buffer> } | undefined;
  for await (const p of reader.pages()) {
    // QEMU points every zero page at one stored page: decode it once.
    let page: Promise<Buffer>;
    if (lastShared && lastShared.offset === p.desc.offset) page = lastShared.page;
    else {
      page = decodePage(p, bs, codecs);
      lastShared = { offset: p.desc.offset, page };
    }
    page.catch(() => undefined); // awaited in drain()
    batch.push({ pfn: p.pfn, page });
    if (batch.length >= BATCH) await drain();
  }
  await drain();
  await closeRange();
  onProgress?.(total, total);
  return { info, ranges, pages, codecs, warnings };
}

function decodePage(p: KdumpPage, bs: number, codecs: Record<string, number>): Promise<Buffer> {
  const { flags } = p.desc;
  const stored = Buffer.from(p.stored);
  const check = (out: Buffer, codec: string): Buffer => {
    if (out.length !== bs) throw new VmpmError(`kdump: pfn ${p.pfn} (${codec}) decompresses to ${out.length} bytes, not ${bs}`);
    codecs[codec] = (codecs[codec] ?? 0) + 1;
    return out;
  };
  const fail = (codec: string) => (err: unknown): never => {
    throw new VmpmError(`kdump: pfn ${p.pfn}: ${codec} data does not decompress (${describeError(err)})`);
  };
  if (flags & DUMP_DH_COMPRESSED_ZLIB) {
    try {
      return Promise.resolve(check(inflateSync(stored, { maxOutputLength: bs }), 'zlib'));
    } catch (err) {
      return Promise.resolve().then(() => fail('zlib')(err));
    }
  }
  if (flags & DUMP_DH_COMPRESSED_ZSTD) return decompressFrame(stored, bs).then((o) => check(o, 'zstd'), fail('zstd'));
  if (flags & (DUMP_DH_COMPRESSED_LZO | DUMP_DH_COMPRESSED_SNAPPY)) {
    const codec = flags & DUMP_DH_COMPRESSED_LZO ? 'lzo' : 'snappy';
    return Promise.reject(new VmpmError(`kdump: pages are ${codec}-compressed, which vmpm cannot decode; convert with \`makedumpfile -c\` (zlib) or \`-E\` (ELF) first`));
  }
  if (flags !== 0) return Promise.reject(new VmpmError(`kdump: pfn ${p.pfn} has unknown compression flags 0x${flags.toString(16)}`));
  return Promise.resolve(check(stored, 'raw'));
}
