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
    const value = await bundle.json<unknown>(name);
    return { info, data: Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8'), text: true };
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
