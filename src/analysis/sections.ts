import { fromHex } from '../util/hex';
import { VmpmError } from '../util/errors';
import {
  SECTION,
  type CpusSection,
  type ErrorsSection,
  type EventsSection,
  type Manifest,
  type MemmapSection,
} from '../bundle/schema';
import { readJsonSection, type SectionTypes } from '../bundle/validate';
import type { AnalysisBundle } from './source';
import type { AddrRange, RegionSpan } from './ranges';
import { mergeRuns } from './ranges';

/**
 * The JSON sections of a bundle, loaded once. Every section is optional: a synthetic or partial bundle
 * may lack any of them, and every command degrades to "not recorded" rather than failing.
 */
export interface BundleSections {
  manifest: Manifest | null;
  cpus: CpusSection | null;
  memmap: MemmapSection | null;
  errors: ErrorsSection | null;
  events: EventsSection | null;
}

/** A known section, schema-checked (a forged one is one line naming the field), or null when absent. */
async function optional<K extends keyof SectionTypes>(bundle: AnalysisBundle, name: K): Promise<SectionTypes[K] | null> {
  if (!bundle.has(name)) return null;
  return readJsonSection(bundle, name);
}

export async function loadSections(bundle: AnalysisBundle): Promise<BundleSections> {
  return {
    manifest: await optional(bundle, SECTION.manifest),
    cpus: await optional(bundle, SECTION.cpus),
    memmap: await optional(bundle, SECTION.memmap),
    errors: await optional(bundle, SECTION.errors),
    events: await optional(bundle, SECTION.events),
  };
}

/** Parses a schema hex value, naming the section and field when a bundle carries garbage. */
export function hexField(value: unknown, where: string): bigint {
  if (typeof value !== 'string') throw new VmpmError(`bundle section ${where}: expected a "0x..." string, found ${JSON.stringify(value)}`);
  try {
    return fromHex(value);
  } catch {
    throw new VmpmError(`bundle section ${where}: expected a "0x..." string, found ${JSON.stringify(value)}`);
  }
}

/** The memory map's regions as bigint spans, sorted by start. */
export function regionSpans(memmap: MemmapSection | null): RegionSpan[] {
  if (!memmap || !Array.isArray(memmap.regions)) return [];
  return memmap.regions
    .map((r, i) => ({
      name: String(r.name),
      kind: String(r.kind),
      start: hexField(r.start, `memmap.regions[${i}].start`),
      end: hexField(r.end, `memmap.regions[${i}].end`),
    }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** The bundle's captured memory as sorted contiguous runs (adjacent ranges merged). */
export function capturedRuns(bundle: AnalysisBundle): AddrRange[] {
  return mergeRuns(bundle.ranges().map((r) => ({ start: r.start, end: r.start + r.length })));
}
