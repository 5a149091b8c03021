/** The short account of a finished capture: what the CLI prints and what `--json` emits. */
import type { MemoryMethod, QuiescePolicy } from '../bundle/schema';
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
