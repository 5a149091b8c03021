/**
 * The capture summary rebuilt from a finished bundle (its manifest and page index), so `vmpm demo`
 * can show the committed sample exactly the way it shows a fresh capture.
 */
import { readJsonSection, type BundleReader } from '../bundle';
import { SECTION } from '../bundle/schema';
import { buildSummary, type CaptureSummary } from './summary';

export async function summaryFromBundle(reader: BundleReader): Promise<CaptureSummary> {
  const manifest = await readJsonSection(reader, 'manifest');
  const cpus = reader.has(SECTION.cpus) ? await readJsonSection(reader, 'cpus') : undefined;
  const errors = reader.has(SECTION.errors) ? await readJsonSection(reader, 'errors') : undefined;
  const stats = reader.stats();
  return buildSummary({
    manifest,
    file: { path: reader.path, sha256: await reader.sha256(), size: reader.fileSize },
    memory: {
      ranges: reader.ranges().length,
      ramCapturedBytes: Number(stats.capturedBytes),
      pages: stats.pages,
      zeroPages: stats.zeroPages,
      storedPages: stats.uniquePages,
      dedupPages: stats.dataPages - stats.uniquePages,
    },
    cpus: cpus?.cpus.length ?? manifest.vm.cpuCount,
    errorRecords: errors?.records.length ?? 0,
    durationMs: Math.round(manifest.timings.total ?? 0),
  });
}
