/** The short account of a finished capture: what the CLI prints and what `--json` emits. */
import type { MemoryRangeStats } from '../bundle';
import type { Manifest, MemoryMethod, QuiescePolicy } from '../bundle/schema';
import { humanBytes } from '../util/bytes';
import { plural } from '../util/text';

export interface CaptureSummary {
  path: string;
  sha256: string;
  bundleBytes: number;
  vm: { name: string | null; uuid: string | null; arch: string };
  stateBefore: string;
  stateAfter: string;
  /** False for a --no-stop capture of a running guest. */
  consistent: boolean;
  policy: QuiescePolicy;
  memoryMethod: MemoryMethod;
  cpus: number;
  ranges: number;
  ramCapturedBytes: number;
  pages: number;
  zeroPages: number;
  storedPages: number;
  dedupPages: number;
  errorRecords: number;
  /** How long the guest was held stopped by this capture (stop to cont), when vmpm stopped and resumed it. */
  guestStoppedMs: number | null;
  durationMs: number;
  warnings: string[];
}

/** What the manifest does not hold: the file, the memory totals, counts of other sections. */
export interface SummarySources {
  manifest: Manifest;
  file: { path: string; sha256: string; size: number };
  memory: { ranges: number; ramCapturedBytes: number; pages: number; zeroPages: number; storedPages: number; dedupPages: number };
  cpus: number;
  errorRecords: number;
  /** A fresh capture: the wall time of capture(); a bundle on disk: the manifest's `timings.total`. */
  durationMs: number;
}

/** The memory totals of a fresh capture, from the ranges it wrote (a bundle on disk: its reader's stats). */
export function memoryTotals(ranges: MemoryRangeStats[]): SummarySources['memory'] {
  const sum = (f: (r: MemoryRangeStats) => number): number => ranges.reduce((s, r) => s + f(r), 0);
  return {
    ranges: ranges.length,
    ramCapturedBytes: sum((r) => Number(r.length)),
    pages: sum((r) => r.pages),
    zeroPages: sum((r) => r.zeroPages),
    storedPages: sum((r) => r.storedPages),
    dedupPages: sum((r) => r.dedupPages),
  };
}

/**
 * The one way a summary is made, for a fresh capture and for a bundle on disk alike, so both report
 * the same pause: `guestStoppedMs` is the manifest's `timings.paused` (stop to cont, or to the
 * background snapshot's own resume); bundles written before that timing existed fall back to the
 * stop and cont action times.
 */
export function buildSummary(src: SummarySources): CaptureSummary {
  const m = src.manifest;
  return {
    path: src.file.path,
    sha256: src.file.sha256,
    bundleBytes: src.file.size,
    vm: { name: m.vm.name, uuid: m.vm.uuid, arch: m.vm.arch },
    stateBefore: m.runState.before.status,
    stateAfter: m.runState.after.status,
    consistent: m.consistent,
    policy: m.policy.quiesce,
    memoryMethod: m.policy.memory,
    cpus: src.cpus,
    ...src.memory,
    errorRecords: src.errorRecords,
    guestStoppedMs: guestStoppedMs(m),
    durationMs: src.durationMs,
    warnings: m.warnings,
  };
}

function guestStoppedMs(m: Manifest): number | null {
  const paused = m.timings.paused;
  if (paused !== undefined) return Math.round(paused);
  const stop = m.actions.find((a) => a.action === 'stop' && a.result === 'ok');
  const cont = m.actions.find((a) => a.action === 'cont' && a.result === 'ok');
  return stop && cont ? Math.round(Date.parse(cont.at) - Date.parse(stop.at)) : null;
}


/** One line: state, CPUs, RAM captured, zero pages, bundle size, time. */
export function formatSummaryLine(s: CaptureSummary): string {
  const who = s.vm.name ?? s.vm.uuid ?? 'guest';
  const state = s.stateBefore === s.stateAfter ? s.stateAfter : `${s.stateBefore} -> ${s.stateAfter}`;
  const ram =
    s.memoryMethod === 'none'
      ? 'no memory (metadata only)'
      : `${humanBytes(s.ramCapturedBytes)} RAM in ${plural(s.ranges, 'range')} (${s.zeroPages} of ${s.pages} pages zero)`;
  const consistency = s.consistent ? '' : ', INCONSISTENT (not stopped)';
  return (
    `captured ${who} [${s.vm.arch}, ${state}${consistency}]: ${plural(s.cpus, 'CPU')}, ${ram}, ` +
    `${plural(s.errorRecords, 'error record')} -> ${s.path} (${humanBytes(s.bundleBytes)}) in ${(s.durationMs / 1000).toFixed(2)} s`
  );
}
