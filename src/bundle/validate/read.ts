import { BundleFormatError } from '../errors';
import type { BlockSection, CpusSection, ErrorsSection, EventsSection, Manifest, MemmapSection, TranscriptSection } from '../schema';
import { SECTION_SHAPES } from './sections';
import { ShapeError } from '../../util/shape';

/** The type each known JSON section has once it passed its schema. */
export interface SectionTypes {
  manifest: Manifest;
  cpus: CpusSection;
  memmap: MemmapSection;
  block: BlockSection;
  errors: ErrorsSection;
  events: EventsSection;
  'qmp-transcript': TranscriptSection;
}

/** What readJsonSection needs from a bundle (BundleReader, or analysis's view of it). */
export interface JsonSectionSource {
  readonly path: string;
  json<T>(name: string): Promise<T>;
}

/**
 * Reads a known JSON section and checks it against its schema. The digests of a bundle are not
 * secret, so a section with every digest recomputed passes `verify`; this is what keeps a forged one
 * from reaching a command as a TypeError: it fails as one line naming the section and the field,
 * e.g. `x.vmpm: bundle section "cpus": field cpus must be an array`.
 */
export async function readJsonSection<K extends keyof SectionTypes>(bundle: JsonSectionSource, name: K): Promise<SectionTypes[K]> {
  const value = await bundle.json<unknown>(name);
  try {
    SECTION_SHAPES[name]!(value, '');
  } catch (err) {
    if (err instanceof ShapeError) throw new BundleFormatError(`${bundle.path}: bundle section "${name}": ${err.message}`);
    throw err;
  }
  return value as SectionTypes[K];
}
