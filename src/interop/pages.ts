/**
 * Walks a bundle's captured pages in address order for the exporters: every page with its range
 * (zero pages as `null`, straight from the page index), data pages decoded ahead by worker threads
 * (BundleReader.streamPages: frame digests checked, memory bounded).
 */
import type { StreamedPage } from '../bundle';
import { PAGE_SIZE } from '../bundle';
import { VmpmError } from '../util/errors';
import type { ExportSource } from './export-source';

export interface FormatResult {
  fileSize: bigint;
  dataPages: number;
  zeroPages: number;
  details: Record<string, unknown>;
}

type PageFn = (rangeIndex: number, addr: bigint, page: StreamedPage | null) => Promise<void> | void;

/** Calls `fn` for every captured page, zero pages with `null`, in ascending address order. */
export async function forEachPage(
  src: ExportSource,
  fn: PageFn,
  onProgress?: (done: number, total: number) => void,
  options: { deflate?: boolean } = {},
): Promise<{ dataPages: number; zeroPages: number }> {
  const total = src.ranges.reduce((s, r) => s + r.pages, 0);
  let r = 0;
  let end = src.ranges.length > 0 ? src.ranges[0]!.start + BigInt(src.ranges[0]!.pages * PAGE_SIZE) : 0n;
  let done = 0;
  const stats = await src.reader.streamPages(
    (addr, page) => {
      while (addr >= end) {
        r++;
        const range = src.ranges[r];
        if (!range) throw new VmpmError(`bundle page at 0x${addr.toString(16)} lies in no range`);
        end = range.start + BigInt(range.pages * PAGE_SIZE);
      }
      if (onProgress && ++done % 4096 === 0) onProgress(done, total);
      return fn(r, addr, page);
    },
    options.deflate ? { deflate: true } : {},
  );
  onProgress?.(total, total);
  return { dataPages: stats.dataPages, zeroPages: stats.zeroPages };
}

/** forEachPage without the zero pages (the sparse formats never write them). */
export async function forEachDataPage(
  src: ExportSource,
  fn: (rangeIndex: number, addr: bigint, data: Buffer) => Promise<void> | void,
  onProgress?: (done: number, total: number) => void,
): Promise<{ dataPages: number; zeroPages: number }> {
  return forEachPage(src, (r, addr, page) => (page === null ? undefined : fn(r, addr, page.data)), onProgress);
}
