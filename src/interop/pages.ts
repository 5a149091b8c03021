/**
 * Walks a bundle's captured pages in address order for the exporters: every page with its range
 * (zero pages as `null`, straight from the page index without decompressing anything), data pages
 * digest-checked by the bundle reader. Memory stays bounded by the reader's frame cache.
 */
import { PAGE_SIZE } from '../bundle';
import { VmpmError } from '../util/errors';
import type { ExportSource } from './export-source';

export interface FormatResult {
  fileSize: bigint;
  dataPages: number;
  zeroPages: number;
  details: Record<string, unknown>;
}

type PageFn = (rangeIndex: number, addr: bigint, data: Buffer | null) => Promise<void> | void;

/** Calls `fn` for every captured page, zero pages with `null`, in ascending address order. */
export async function forEachPage(src: ExportSource, fn: PageFn, onProgress?: (done: number, total: number) => void): Promise<{ dataPages: number; zeroPages: number }> {
  const total = src.ranges.reduce((s, r) => s + r.pages, 0);
  const data = src.reader.dataPages()[Symbol.asyncIterator]();
  let r = 0;
  let end = src.ranges.length > 0 ? src.ranges[0]!.start + BigInt(src.ranges[0]!.pages * PAGE_SIZE) : 0n;
  let dataPages = 0;
  let zeroPages = 0;
  for (const page of src.reader.pages()) {
    while (page.addr >= end) {
      r++;
      const range = src.ranges[r];
      if (!range) throw new VmpmError(`bundle page at 0x${page.addr.toString(16)} lies in no range`);
      end = range.start + BigInt(range.pages * PAGE_SIZE);
    }
    if (page.zero) {
      zeroPages++;
      await fn(r, page.addr, null);
    } else {
      const next = await data.next();
      if (next.done || next.value.addr !== page.addr) throw new VmpmError(`bundle page index and data disagree at 0x${page.addr.toString(16)}`);
      dataPages++;
      await fn(r, page.addr, next.value.data);
    }
    if (onProgress && (dataPages + zeroPages) % 4096 === 0) onProgress(dataPages + zeroPages, total);
  }
  onProgress?.(total, total);
  return { dataPages, zeroPages };
}

/** forEachPage without the zero pages (the sparse formats never write them). */
export async function forEachDataPage(
  src: ExportSource,
  fn: (rangeIndex: number, addr: bigint, data: Buffer) => Promise<void> | void,
  onProgress?: (done: number, total: number) => void,
): Promise<{ dataPages: number; zeroPages: number }> {
  return forEachPage(src, (r, addr, data) => (data === null ? undefined : fn(r, addr, data)), onProgress);
}
