/**
 * The age v1 text header (C2SP age.md, "Header"): version line, recipient stanzas, and the
 * HMAC-SHA-256 over everything up to and including `---`, keyed by HKDF(file key, "header").
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { VmpmError } from '../../util/errors';
import { b64DecodeCanonical, b64Encode } from './base64';

export const VERSION_LINE = 'age-encryption.org/v1';
/** The longest header vmpm reads: far beyond any real recipient list, short of unbounded memory. */
export const MAX_HEADER_BYTES = 1 << 20;

export interface Stanza {
  args: string[];
  body: Buffer;
}

export interface ParsedHeader {
  stanzas: Stanza[];
  /** The bytes the MAC covers: the header up to and including `---`. */
  macInput: Buffer;
  mac: Buffer;
}

function headerMac(fileKey: Buffer, macInput: Buffer): Buffer {
  const key = Buffer.from(hkdfSync('sha256', fileKey, Buffer.alloc(0), Buffer.from('header'), 32));
  return createHmac('sha256', key).update(macInput).digest();
}

function stanzaText(s: Stanza): string {
  const b64 = b64Encode(s.body);
  const lines: string[] = [];
  // Body lines are 64 columns; the last is shorter (possibly empty) so a reader knows where it ends.
  for (let i = 0; i <= b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  if (lines[lines.length - 1]!.length === 64) lines.push('');
  return `-> ${s.args.join(' ')}\n${lines.join('\n')}\n`;
}

export function encodeHeader(stanzas: Stanza[], fileKey: Buffer): Buffer {
  const macInput = Buffer.from(`${VERSION_LINE}\n${stanzas.map(stanzaText).join('')}---`, 'latin1');
  return Buffer.concat([macInput, Buffer.from(` ${b64Encode(headerMac(fileKey, macInput))}\n`, 'latin1')]);
}

/** Where the header ends in `buf` (index after the MAC line's LF), or -1 if it is not all there yet. */
export function headerEnd(buf: Buffer): number {
  const mark = buf.indexOf('\n---');
  if (mark < 0) return -1;
  const lf = buf.indexOf(0x0a, mark + 1);
  return lf < 0 ? -1 : lf + 1;
}

const bad = (what: string): VmpmError => new VmpmError(`malformed age header: ${what}`);

/** Parses a complete header (as delimited by headerEnd). */
export function parseHeader(header: Buffer): ParsedHeader {
  const text = header.toString('latin1');
  const lines = text.split('\n');
  lines.pop(); // the text ends with LF
  if (lines[0] !== VERSION_LINE) throw bad(`first line is ${JSON.stringify(lines[0]?.slice(0, 40))}, expected ${VERSION_LINE}`);
  const stanzas: Stanza[] = [];
  let i = 1;
  while (i < lines.length && lines[i]!.startsWith('-> ')) {
    const args = lines[i]!.slice(3).split(' ');
    if (args.some((a) => !/^[\x21-\x7e]+$/.test(a))) throw bad(`stanza ${stanzas.length + 1} has an invalid argument`);
    i++;
    let b64 = '';
    for (;;) {
      const line = lines[i];
      if (line === undefined) throw bad(`stanza ${stanzas.length + 1} has no final body line`);
      i++;
      if (line.length > 64) throw bad(`stanza ${stanzas.length + 1} has a body line over 64 columns`);
      b64 += line;
      if (line.length < 64) break;
    }
    const body = b64DecodeCanonical(b64);
    if (!body) throw bad(`stanza ${stanzas.length + 1} body is not canonical base64`);
    stanzas.push({ args, body });
  }
  if (stanzas.length === 0) throw bad('no recipient stanza');
  const last = lines[i];
  if (i !== lines.length - 1 || last === undefined || !last.startsWith('--- ')) throw bad('expected the "---" MAC line after the stanzas');
  const mac = b64DecodeCanonical(last.slice(4));
  if (!mac || mac.length !== 32) throw bad('the MAC is not 32 bytes of canonical base64');
  const macInput = header.subarray(0, header.length - last.length - 1 + 3);
  return { stanzas, macInput: Buffer.from(macInput), mac };
}

export function headerMacHolds(h: ParsedHeader, fileKey: Buffer): boolean {
  return timingSafeEqual(headerMac(fileKey, h.macInput), h.mac);
}
