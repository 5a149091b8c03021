import { toHex, type Hex } from '../util/hex';
import type { MemmapSection } from '../bundle/schema';
import type { AnalysisBundle } from './source';
import { capturedRuns, hexField } from './sections';
import { coveredBytes } from './ranges';

/** `vmpm memmap --json`. `end` is exclusive; `captured` is recomputed from the ranges actually stored. */
export interface MemmapModel {
  regions: Array<{
    name: string;
    kind: string;
    start: Hex;
    end: Hex;
    size: Hex;
    offset?: Hex;
    priority?: number;
    captured: boolean;
    capturedBytes: Hex;
  }>;
  /** The stored memory ranges (what `read` and `search` can see). */
  captured: Array<{ start: Hex; end: Hex; name: string | null; pages: number; zeroPages: number }>;
  sizeSummary: { baseMemory: string; pluggedMemory: string | null } | null;
}

export function buildMemmap(bundle: AnalysisBundle, memmap: MemmapSection | null): MemmapModel {
  const runs = capturedRuns(bundle);
  const regions = (memmap?.regions ?? []).map((r, i) => {
    const start = hexField(r.start, `memmap.regions[${i}].start`);
    const end = hexField(r.end, `memmap.regions[${i}].end`);
    const covered = coveredBytes({ start, end }, runs);
    const out: MemmapModel['regions'][number] = {
      name: r.name,
      kind: r.kind,
      start: toHex(start),
      end: toHex(end),
      size: toHex(end - start),
      captured: end > start && covered === end - start,
      capturedBytes: toHex(covered),
    };
    if (r.offset !== undefined) out.offset = r.offset;
    if (r.priority !== undefined) out.priority = r.priority;
    return out;
  });
  return {
    regions,
    captured: bundle.ranges().map((r) => ({
      start: toHex(r.start),
      end: toHex(r.start + r.length),
      name: r.name ?? null,
      pages: r.pages,
      zeroPages: r.zeroPages,
    })),
    sizeSummary: memmap?.sizeSummary ?? null,
  };
}
