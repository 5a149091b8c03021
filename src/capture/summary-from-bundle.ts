/**
 * The capture summary rebuilt from a finished bundle (its manifest and page index), so `vmpm demo`
 * can show the committed sample exactly the way it shows a fresh capture.
 */
import { readJsonSection, type BundleReader } from '../bundle';
import { SECTION } from '../bundle/schema';
import type { CaptureSummary } from './summary';

export async function summaryFromBundle(reader: BundleReader): Promise<CaptureSummary> {
  const manifest = await readJsonSection(reader, 'manifest');
  const cpus = reader.has(SECTION.cpus) ? await readJsonSection(reader, 'cpus') : undefined;
  const errors = reader.has(SECTION.errors) ? await readJsonSection(reader, 'errors') : undefined;
  const ranges = reader.ranges();
  const stats = reader.stats();
  const stop = manifest.actions.find((a) => a.action === 'stop' && a.result === 'ok');
  const cont = manifest.actions.find((a) => a.action === 'cont' && a.result === 'ok');
  return {
    path: reader.path,
    sha256: await reader.sha256(),
    bundleBytes: reader.fileSize,
    vm: { name: manifest.vm.name, uuid: manifest.vm.uuid, arch: manifest.vm.arch },
    stateBefore: manifest.runState.before.status,
    stateAfter: manifest.runState.after.status,
    consistent: manifest.consistent,
    policy: manifest.policy.quiesce,
    memoryMethod: manifest.policy.memory,
    cpus: cpus?.cpus.length ?? manifest.vm.cpuCount,
    ranges: ranges.length,
    ramCapturedBytes: Number(stats.capturedBytes),
    pages: stats.pages,
    zeroPages: stats.zeroPages,
    storedPages: stats.uniquePages,
    dedupPages: stats.dataPages - stats.uniquePages,
    errorRecords: errors?.records.length ?? 0,
    guestStoppedMs: stop && cont ? Math.round(Date.parse(cont.at) - Date.parse(stop.at)) : null,
    durationMs: Math.round(manifest.timings.total ?? 0),
    warnings: manifest.warnings,
  };
}
