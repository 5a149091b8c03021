/**
 * `vmpm export --format kdump`: makedumpfile's kdump-compressed format with per-page zlib (the one
 * codec makedumpfile 1.7.2 on Debian 12 and crash both read: Debian builds makedumpfile without zstd,
 * and node 20's zlib has no zstd either). Every captured page is dumped; all zero pages share one
 * descriptor and one stored page, as QEMU does; a page zlib cannot shrink is stored raw (flags 0).
 * Pages are compressed by the bundle's frame-decoding worker threads, a whole frame per message (one
 * async zlib call per 4 KiB page costs a thread hop each and was 3x slower than deflateSync), and
 * written in address order here.
 */
import { PAGE_SIZE } from '../bundle';
import { deflatePages } from '../bundle/decode-worker';
import { DUMP_DH_COMPRESSED_ZLIB, encodePageDesc, PAGE_DESC_SIZE, type PageDesc } from '../formats/kdump/header';
import { bitmapSlice, layoutKdump, type PfnRange } from '../formats/kdump/writer';
import { encodeCpuNotes } from '../formats/elf/notes-writer';
import { EM_386, EM_AARCH64 } from '../formats/elf';
import type { ExportSource } from './export-source';
import { utsnameFor } from './linux';
import { type OutputFile, SparseWriter, writeAll } from './output';
import { forEachPage, type FormatResult } from './pages';

const DESC_BATCH = 4096;
const BITMAP_CHUNK = 1024 * 1024;
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

export async function writeKdump(src: ExportSource, out: OutputFile, onProgress?: (done: number, total: number) => void): Promise<FormatResult> {
  const vmcoreinfoAt = src.vmcoreinfoNote;
  const notes = encodeCpuNotes(src.layout, src.cpus, vmcoreinfoAt ? [vmcoreinfoAt] : []);
  const ranges: PfnRange[] = src.ranges.map((r) => ({ start: r.start / BigInt(PAGE_SIZE), pages: BigInt(r.pages) }));
  const machine = src.machine === EM_AARCH64 ? 'aarch64' : src.machine === EM_386 ? 'i686' : 'x86_64';
  const createdAt = typeof src.manifest?.createdAt === 'string' ? Date.parse(src.manifest.createdAt) : Date.now();
  const layout = layoutKdump({
    ranges,
    notes,
    // The VMCOREINFO note is last: its desc starts after its 12-byte header and "VMCOREINFO\0\0".
    ...(vmcoreinfoAt ? { vmcoreinfo: { offset: notes.length - vmcoreinfoAt.length + 12 + 12, size: vmcoreinfoAt.readUInt32LE(4) } } : {}),
    utsname: utsnameFor(src.vmcoreinfo, machine),
    timestampSec: BigInt(Math.floor((Number.isNaN(createdAt) ? Date.now() : createdAt) / 1000)),
    nrCpus: src.cpus.length,
    physBase: src.vmcoreinfo?.numberIfAny('phys_base') ?? 0n,
    status: DUMP_DH_COMPRESSED_ZLIB,
  });
  await writeAll(out.fh, layout.head, 0);
  for (let off = 0n; off < layout.bitmapLength; off += BigInt(BITMAP_CHUNK)) {
    const n = Number(layout.bitmapLength - off < BigInt(BITMAP_CHUNK) ? layout.bitmapLength - off : BigInt(BITMAP_CHUNK));
    const slice = bitmapSlice(ranges, off, n);
    await writeAll(out.fh, slice, Number(layout.bitmapOffset + off));
    await writeAll(out.fh, slice, Number(layout.bitmapOffset + layout.bitmapLength + off));
  }

  // Page data and descriptors go through one writer (its own thread): descriptors in batches of
  // DESC_BATCH, copied there like the pages.
  const data = new SparseWriter(out.fh, out.target, { earlyWriteback: true });
  try {
    let dataPos = Number(layout.dataOffset);
    const zero = storePage(ZERO_PAGE);
    const zeroDesc: PageDesc = { offset: BigInt(dataPos), size: zero.stored.length, flags: zero.flags };
    await data.write(dataPos, zero.stored);
    dataPos += zero.stored.length;

    const descs = Buffer.alloc(DESC_BATCH * PAGE_DESC_SIZE);
    let descCount = 0;
    let descPos = Number(layout.descOffset);
    const flushDescs = (): Promise<void> | void => {
      const w = data.write(descPos, descs.subarray(0, descCount * PAGE_DESC_SIZE));
      descPos += descCount * PAGE_DESC_SIZE;
      descCount = 0;
      return w;
    };
    /** Returns a promise only when the caller must wait for the writer. */
    const addDesc = (d: PageDesc): Promise<void> | void => {
      encodePageDesc(descs, descCount * PAGE_DESC_SIZE, d);
      return ++descCount === DESC_BATCH ? flushDescs() : undefined;
    };

    let rawPages = 0;
    // Pages arrive deflated by the decoding workers (decode-worker.ts: the same zlib call as storePage).
    const stats = await forEachPage(
      src,
      (_r, _addr, page) => {
        if (page === null) return addDesc(zeroDesc);
        const stored = page.stored!;
        if (!stored.zlib) rawPages++;
        const desc: PageDesc = { offset: BigInt(dataPos), size: stored.bytes.length, flags: stored.zlib ? DUMP_DH_COMPRESSED_ZLIB : 0 };
        dataPos += stored.bytes.length;
        const w = data.write(Number(desc.offset), stored.bytes);
        return w ? w.then(() => addDesc(desc)) : addDesc(desc);
      },
      onProgress,
      { deflate: true },
    );
    if (descCount > 0) await flushDescs();
    await data.finish();
    return {
      fileSize: BigInt(dataPos),
      ...stats,
      details: { compression: 'zlib', rawPages, maxMapnr: layout.maxMapnr.toString(), physBase: layout.head.readBigInt64LE(4096).toString() },
    };
  } finally {
    await data.close();
  }
}

/** The stored form of one page, by the workers' own function (zlib level 1, 4 KiB window, else raw). */
function storePage(page: Buffer): { stored: Buffer; flags: number } {
  const d = deflatePages(page);
  return { stored: Buffer.from(d.packed.buffer, d.packed.byteOffset, d.packed.byteLength), flags: d.zlib[0] === 1 ? DUMP_DH_COMPRESSED_ZLIB : 0 };
}
