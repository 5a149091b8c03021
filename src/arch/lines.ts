/**
 * Small, strict line scanners shared by the per-architecture `info registers` parsers. QEMU prints
 * registers as `NAME=hex` fields separated by spaces (short names are padded: "R8 =", "ES ="), plus
 * decoded annotations in brackets ("[---Z-P-]", "[ST=0]"). A line is either understood completely or
 * rejected, so a corrupted value is never half-read.
 */
import { VmpmError } from '../util/errors';
import type { Hex } from '../util/hex';
import { toHex } from '../util/hex';

/** One CPU's block of `info registers` output. */
export interface CpuBlock {
  index: number;
  /** The block verbatim, from "CPU#n" up to the next block (line endings as QEMU sent them). */
  raw: string;
  /** Lines after the "CPU#n" header, without line terminators and trailing blanks. */
  lines: string[];
}

/** Splits `info registers [-a]` output into per-CPU blocks ("\r\nCPU#<n>\r\n" starts each one). */
export function splitCpuBlocks(text: string): CpuBlock[] {
  const header = /^CPU#(\d+)\r?$/gm;
  const starts: Array<{ at: number; index: number }> = [];
  for (let m = header.exec(text); m !== null; m = header.exec(text)) {
    starts.push({ at: m.index, index: Number(m[1]) });
  }
  if (starts.length === 0) {
    const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
    throw new VmpmError(
      first === undefined
        ? 'info registers: empty output, expected at least one "CPU#<n>" block'
        : `info registers: no "CPU#<n>" block in the output; first line is ${quote(first)}`,
    );
  }
  const before = text.slice(0, starts[0]!.at).split(/\r?\n/).find((l) => l.trim() !== '');
  if (before !== undefined) {
    throw new VmpmError(`info registers: unexpected text before the first CPU block: ${quote(before)}`);
  }
  const seen = new Set<number>();
  return starts.map((s, i) => {
    if (seen.has(s.index)) throw new VmpmError(`info registers: CPU#${s.index} appears twice`);
    seen.add(s.index);
    const raw = text.slice(s.at, starts[i + 1]?.at ?? text.length);
    const lines = raw.split(/\r?\n/).slice(1).map((l) => l.replace(/\s+$/, ''));
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return { index: s.index, raw, lines };
  });
}

/** The label before the first "=" of a line ("R8 =..." -> "R8"), or undefined. */
export function firstLabel(line: string): string | undefined {
  return /^\s*([A-Za-z][A-Za-z0-9_]*) ?=/.exec(line)?.[1];
}

/**
 * Parses a line made only of `NAME=hex` fields and [bracketed] annotations. Returns undefined when
 * anything else is on the line (a truncated or corrupted value), so the caller can name the line.
 */
export function parseHexFields(line: string): Array<[name: string, hex: string]> | undefined {
  const token = /\s+|\[[^\]]*\]|([A-Za-z][A-Za-z0-9_]*) ?=([0-9a-fA-F]+)(?=\s|\[|$)/y;
  const fields: Array<[string, string]> = [];
  let pos = 0;
  while (pos < line.length) {
    token.lastIndex = pos;
    const m = token.exec(line);
    if (m === null) return undefined;
    if (m[1] !== undefined) fields.push([m[1], m[2]!]);
    pos = token.lastIndex;
  }
  return fields;
}

/**
 * Matches a whole line as a whitespace-separated repetition of `item` (e.g. "FPR0=... 0000 FPR1=...").
 * Returns every item match, or undefined when something else is on the line.
 */
export function matchRepeated(line: string, item: RegExp): RegExpExecArray[] | undefined {
  const re = new RegExp(`\\s*(?:${item.source})(?=\\s|$)\\s*`, 'y');
  const out: RegExpExecArray[] = [];
  let pos = 0;
  while (pos < line.length) {
    re.lastIndex = pos;
    const m = re.exec(line);
    if (m === null) return undefined;
    out.push(m);
    pos = re.lastIndex;
  }
  return out.length > 0 ? out : undefined;
}

/** Parses hex digits (without 0x) into the canonical "0x..." form; rejects values wider than `maxBits`. */
export function hexValue(digits: string, maxBits: number, where: () => string): Hex {
  if (!/^[0-9a-fA-F]+$/.test(digits) || digits.replace(/^0+/, '').length > Math.ceil(maxBits / 4)) {
    throw new VmpmError(`${where()}: ${quote(digits)} is not a ${maxBits}-bit hex value`);
  }
  return toHex(BigInt(`0x${digits}`));
}

/** Joins hex chunks printed most-significant first ("hi lo") into one value. */
export function joinHexChunks(chunks: string[]): Hex {
  return toHex(BigInt(`0x${chunks.join('')}`));
}

export function malformed(cpu: number, lineNo: number, line: string, expected: string): VmpmError {
  return new VmpmError(`info registers: CPU#${cpu} line ${lineNo} is malformed: ${quote(line)} (expected ${expected})`);
}

/** Quotes a line for an error message, cut short so a hostile input cannot flood the terminal. */
export function quote(line: string): string {
  const max = 120;
  return JSON.stringify(line.length > max ? `${line.slice(0, max)}...` : line);
}
