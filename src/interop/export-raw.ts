/**
 * `vmpm export --format raw`: a flat image where byte N is guest-physical address N. Captured data
 * pages are written; zero pages and uncaptured addresses are file holes (they read as zeros), so the
 * JSON side file (docs/export-formats.md) says which addresses were actually captured.
 */
import { toHex } from '../util/hex';
import type { ExportSource } from './export-source';
import { type OutputFile, SparseWriter } from './output';
import { forEachDataPage, type FormatResult } from './pages';

export const RAW_SIDE_FORMAT = 'vmpm-raw-ranges/1';

export async function writeRaw(src: ExportSource, out: OutputFile, onProgress?: (done: number, total: number) => void): Promise<FormatResult> {
  const sink = new SparseWriter(out.fh, out.target, { earlyWriteback: true });
  let stats: { dataPages: number; zeroPages: number };
  try {
    stats = await forEachDataPage(src, (_r, addr, data) => sink.write(Number(addr), data), onProgress);
    await sink.finish();
  } finally {
    await sink.close();
  }
  const fileSize = src.ranges.reduce((m, r) => (r.start + r.length > m ? r.start + r.length : m), 0n);
  return { fileSize, ...stats, details: {} };
}

/** The side file: which byte ranges of the image are captured memory (everything else is not). */
export function rawSideFile(src: ExportSource, imageName: string, imageSize: bigint): string {
  return `${JSON.stringify(
    {
      format: RAW_SIDE_FORMAT,
      image: imageName,
      imageSize: toHex(imageSize),
      pageSize: 4096,
      arch: src.arch,
      ranges: src.ranges.map((r) => ({ start: toHex(r.start), length: toHex(r.length), fileOffset: toHex(r.start), pages: r.pages, zeroPages: r.zeroPages })),
    },
    null,
    2,
  )}\n`;
}
