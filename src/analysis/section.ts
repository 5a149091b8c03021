import { jsonLimitProblem } from '../bundle/validate';
import { VmpmError } from '../util/errors';
import type { AnalysisBundle, SectionInfo } from './source';

export interface SectionContent {
  info: SectionInfo;
  /** The section's bytes, digest-checked: a JSON section as its UTF-8 text, a raw one verbatim. */
  data: Buffer;
  /** Whether the bytes are printable text (JSON, VMCOREINFO, a serial log) rather than binary. */
  text: boolean;
}

/**
 * One section of a bundle by name, digest-checked on the way out. An unknown name is an error that
 * lists the names the bundle has, so a user who mistyped it sees at once what to write.
 */
export async function readSection(bundle: AnalysisBundle, name: string): Promise<SectionContent> {
  const info = bundle.sections().find((s) => s.name === name);
  if (!info) {
    const names = bundle.sections().map((s) => s.name).join(', ');
    throw new VmpmError(`${bundle.path} has no section ${JSON.stringify(name)} (it has: ${names || 'none'})`);
  }
  if (info.type === 'json') {
    // Not schema-checked: `section` is how an analyst looks at exactly what a (possibly forged) bundle holds.
    const data = await bundle.raw(name);
    return { info, data: prettyJson(data), text: true };
  }
  const data = await bundle.raw(name);
  return { info, data, text: isText(data) };
}

/** Valid UTF-8 with no control characters other than tab, newline, carriage return and form feed. */
function isText(data: Buffer): boolean {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(data.toString('latin1'))) return false;
  return Buffer.from(data.toString('utf8'), 'utf8').equals(data);
}

/** Indented JSON when the bytes parse within the reader's limits; otherwise the bytes as they are. */
function prettyJson(data: Buffer): Buffer {
  if (jsonLimitProblem(data) !== undefined) return data;
  try {
    return Buffer.from(`${JSON.stringify(JSON.parse(data.toString('utf8')), null, 2)}\n`, 'utf8');
  } catch {
    return data;
  }
}
