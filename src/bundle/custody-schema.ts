/**
 * JSON sections that record what chain-of-custody tools did to a bundle (docs/bundle-format.md,
 * "Slim bundles" and "Redacted bundles"). Written by src/custody; read by info, report and verify
 * so their output says a bundle is slim or redacted. 64-bit values are "0x..." strings.
 */
import type { Hex } from '../util/hex';
import { BundleFormatError } from './errors';
import { array, hex, nullable, object, type Shape, ShapeError, str, uint } from './validate/shape';

export const SLIM_SECTION = 'slim';
export const REDACTION_SECTION = 'redaction';

/** Who did it and where: `user@host`, the vmpm version, an ISO time. */
export interface CustodyActor {
  by: string;
  vmpmVersion: string;
  at: string;
}

export interface SourceBundle {
  file: string;
  sha256: string;
  size: number;
}

export interface SlimSection extends CustodyActor {
  source: SourceBundle;
  /** What the slim bundle leaves out: always "memory contents"; "attachments" with --no-attachments. */
  omitted: string[];
  /** Sections left out, by name. */
  omittedSections: string[];
  pages: number;
  dataPages: number;
}

export interface RedactionRecord extends CustodyActor {
  source: SourceBundle;
  reason: string | null;
  /** What was asked for: "range 0x..-0x..", "virt 0x..-0x.. (cpu 0, cr3 0x...)", "pattern /re/". */
  requests: string[];
  /** Every erased guest-physical byte range [start, end), merged and sorted. */
  erased: Array<{ start: Hex; end: Hex; bytes: Hex }>;
  /** Each page that was changed: its address and its digest in the source bundle. */
  pages: Array<{ addr: Hex; originalSha256: string }>;
}

export interface RedactionSection {
  /** One record per `vmpm redact` run, oldest first (redacting a redacted bundle appends). */
  records: RedactionRecord[];
}

const actor = { by: str, vmpmVersion: str, at: str };
const source = object({ file: str, sha256: str, size: uint });
const SHAPES: Record<string, Shape> = {
  [SLIM_SECTION]: object({ ...actor, source, omitted: array(str), omittedSections: array(str), pages: uint, dataPages: uint }),
  [REDACTION_SECTION]: object({
    records: array(
      object({
        ...actor,
        source,
        reason: nullable(str),
        requests: array(str),
        erased: array(object({ start: hex, end: hex, bytes: hex })),
        pages: array(object({ addr: hex, originalSha256: str })),
      }),
    ),
  }),
};

/**
 * Reads the slim or redaction section, checked against its shape (digests are not secret: a forged
 * section must fail as one line naming the field, not as a TypeError in info or report).
 */
export async function readCustodySection<K extends typeof SLIM_SECTION | typeof REDACTION_SECTION>(
  bundle: { readonly path: string; json<T>(name: string): Promise<T> },
  name: K,
): Promise<K extends typeof SLIM_SECTION ? SlimSection : RedactionSection> {
  const value = await bundle.json<unknown>(name);
  try {
    SHAPES[name]!(value, '');
  } catch (err) {
    if (err instanceof ShapeError) throw new BundleFormatError(`${bundle.path}: bundle section "${name}": ${err.message}`);
    throw err;
  }
  return value as K extends typeof SLIM_SECTION ? SlimSection : RedactionSection;
}
