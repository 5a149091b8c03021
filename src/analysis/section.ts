import { jsonLimitProblem, MAX_JSON_SECTION_BYTES } from '../bundle/validate';
import { VmpmError } from '../util/errors';
import type { AnalysisBundle, SectionInfo } from './source';

export interface SectionStream {
  info: SectionInfo;
  /** Whether the bytes are printable text (JSON, VMCOREINFO, a serial log) rather than binary. */
  text: boolean;
  /**
   * The section's bytes, digest-checked before the first piece (a JSON section as indented text when
   * it parses within the reader's limits, a raw one verbatim), in pieces of at most 4 MiB: `vmpm
   * section` writes a 2 GiB section in bounded memory.
   */
  chunks: AsyncIterable<Buffer>;
}

export interface SectionContent {
  info: SectionInfo;
  data: Buffer;
  text: boolean;
}

/**
 * One section of a bundle by name, digest-checked on the way out. An unknown name is an error that
 * lists the names the bundle has, so a user who mistyped it sees at once what to write.
 */
export async function streamSection(bundle: AnalysisBundle, name: string): Promise<SectionStream> {
  const info = bundle.sections().find((s) => s.name === name);
  if (!info) {
    const names = bundle.sections().map((s) => s.name).join(', ');
    throw new VmpmError(`${bundle.path} has no section ${JSON.stringify(name)} (it has: ${names || 'none'})`);
  }
  if (info.type === 'json' && info.length <= MAX_JSON_SECTION_BYTES) {
    // Not schema-checked: `section` is how an analyst looks at exactly what a (possibly forged) bundle
    // holds. Pretty-printing needs the parse, which the JSON limits bound (64 MiB).
    const data = prettyJson(await bundle.raw(name));
    return { info, text: true, chunks: once(data) };
  }
  const classifier = new TextClassifier();
  const it = bundle.rawChunks(name, (c) => classifier.add(c))[Symbol.asyncIterator]();
  // The first next() runs the reader's digest pass (which fed the classifier) before any byte goes out.
  const first = await it.next();
  const text = classifier.done();
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.done) return;
    yield first.value;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  }
  return { info, text, chunks: rest() };
}

/** The whole section in memory (for callers that need it at once; bounded by the section's size). */
export async function readSection(bundle: AnalysisBundle, name: string): Promise<SectionContent> {
  const s = await streamSection(bundle, name);
  const parts: Buffer[] = [];
  for await (const c of s.chunks) parts.push(c);
  return { info: s.info, data: Buffer.concat(parts), text: s.text };
}

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

/**
 * Valid UTF-8 with no control characters other than tab, newline, carriage return and form feed,
 * fed piece by piece with no copy or string of the piece (a 2 GiB section is classified in one
 * 4 MiB buffer). Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF.
 */
class TextClassifier {
  private text = true;
  /** Continuation bytes the current character still needs, and the range the next one must be in. */
  private need = 0;
  private lo = 0x80;
  private hi = 0xbf;

  add(chunk: Uint8Array): void {
    let { need, lo, hi } = this;
    for (let i = 0; i < chunk.length && this.text; i++) {
      const b = chunk[i]!;
      if (need > 0) {
        if (b < lo || b > hi) this.text = false;
        need -= 1;
        lo = 0x80;
        hi = 0xbf;
      } else if (b < 0x80) {
        if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d) || b === 0x7f) this.text = false;
      } else if (b >= 0xc2 && b <= 0xdf) need = 1;
      else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        if (b === 0xe0) lo = 0xa0; // overlong
        if (b === 0xed) hi = 0x9f; // surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        if (b === 0xf0) lo = 0x90; // overlong
        if (b === 0xf4) hi = 0x8f; // past U+10FFFF
      } else this.text = false;
    }
    Object.assign(this, { need, lo, hi });
  }

  done(): boolean {
    return this.text && this.need === 0;
  }
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
