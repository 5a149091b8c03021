/**
 * The kernel's own compressed symbol table (kernel/kallsyms.c, scripts/kallsyms.c), decoded from guest
 * memory with the addresses VMCOREINFO publishes since Linux 6.0 (SYMBOL(kallsyms_names),
 * kallsyms_token_table, kallsyms_token_index, kallsyms_num_syms, and kallsyms_offsets +
 * kallsyms_relative_base or kallsyms_addresses). No debug files are needed.
 *
 * Layout: `kallsyms_names` is num_syms entries of [length][length token bytes]; each token byte
 * indexes `kallsyms_token_index` (u16[256]) into `kallsyms_token_table` (NUL-terminated strings);
 * the first decoded character is the symbol type (t, T, d, ...). The encodings that changed:
 *  - name lengths: one byte up to 6.0; since 6.1 (73bbb94466fd, "support big kernel symbols") a
 *    length with bit 7 set continues in a second byte (ULEB128, at most two bytes);
 *  - addresses: `kallsyms_addresses` (unsigned long[]) without CONFIG_KALLSYMS_BASE_RELATIVE (gone
 *    in 6.11); otherwise s32 `kallsyms_offsets` relative to `kallsyms_relative_base`, where on x86-64
 *    with CONFIG_KALLSYMS_ABSOLUTE_PERCPU (until 6.14) non-negative values are absolute per-cpu
 *    offsets and negative ones are `relative_base - 1 - value`; since 7.0 (a081b5789255, "get rid of
 *    kallsyms relative base") each offset is relative to its own location ("place-relative").
 * Which address encoding a kernel uses is decided the way drgn does it: the one that reproduces
 * VMCOREINFO's SYMBOL(_stext). The name encoding is the one under which every entry decodes to a
 * valid type and name. Everything read is bounded (symbol count, bytes, name length).
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { Vmcoreinfo } from './vmcoreinfo';
import { SymbolTable } from './symbols';

/** More symbols than any kernel has (Debian 6.1: ~95,000; allyesconfig: ~400,000). */
const MAX_SYMS = 4_000_000;
/** Bytes of kallsyms_names we are willing to read: 64 MiB. */
const MAX_NAMES_BYTES = 64 << 20;
const NAMES_CHUNK = 256 << 10;
/** KSYM_NAME_LEN is 512 since 6.1 (128 before); tokens per name cannot exceed it. */
const MAX_TOKENS = 512;

export type ReadKernel = (virt: bigint, length: number) => Promise<Buffer>;

export type NameEncoding = 'one-byte lengths (Linux up to 6.0)' | 'ULEB128 lengths (Linux 6.1 and later)';
export type AddressEncoding =
  | 'absolute addresses (kallsyms_addresses)'
  | 'base-relative offsets (kallsyms_relative_base + u32)'
  | 'base-relative offsets with absolute per-cpu (x86-64, Linux up to 6.14)'
  | 'place-relative offsets (Linux 7.0 and later)';

export interface KallsymsInfo {
  names: NameEncoding;
  addresses: AddressEncoding;
  count: number;
  /** How long reading and decoding took. */
  ms: number;
}

export class KallsymsError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'KallsymsError';
  }
}

/** The VMCOREINFO keys the decoder needs, or why they are not there. */
export function kallsymsMissing(info: Vmcoreinfo): string[] {
  const need = ['kallsyms_names', 'kallsyms_token_table', 'kallsyms_token_index', 'kallsyms_num_syms', '_stext'];
  const missing = need.filter((n) => info.symbolIfAny(n) === undefined);
  if (info.symbolIfAny('kallsyms_offsets') === undefined && info.symbolIfAny('kallsyms_addresses') === undefined) missing.push('kallsyms_offsets');
  return missing.map((n) => `SYMBOL(${n})`);
}

/** Decodes the kernel's symbol table. Throws KallsymsError with one line saying what is wrong. */
export async function decodeKallsyms(info: Vmcoreinfo, read: ReadKernel): Promise<{ table: SymbolTable; kallsyms: KallsymsInfo }> {
  const started = performance.now();
  const missing = kallsymsMissing(info);
  if (missing.length > 0) throw new KallsymsError(`VMCOREINFO lacks ${missing.join(', ')}: this kernel does not publish its symbol table (Linux 6.0+ does); use --system-map FILE`);
  const sym = (n: string) => info.symbol(n);
  const count = (await read(sym('kallsyms_num_syms'), 4)).readUInt32LE(0);
  if (count === 0 || count > MAX_SYMS) throw new KallsymsError(`kallsyms_num_syms at ${toHex(sym('kallsyms_num_syms'))} says ${count} symbols: not a plausible symbol table (1..${MAX_SYMS})`);
  const tokens = await readTokens(read, sym('kallsyms_token_table'), sym('kallsyms_token_index'));
  const names = await decodeNames(read, sym('kallsyms_names'), count, tokens, preferLongNames(info.osRelease));
  if (names.index._stext === undefined) throw new KallsymsError('kallsyms has no _stext symbol: cannot check which address encoding the kernel uses');
  const addresses = await decodeAddresses(info, read, count, names.index._stext);
  const table = SymbolTable.fromArrays(addresses.values, names.types, names.nameAt, 'kallsyms', { text: names.index._text ?? names.index._stext, end: names.index._end });
  return { table, kallsyms: { names: names.encoding, addresses: addresses.encoding, count, ms: performance.now() - started } };
}

/** drgn's heuristic, by release: the two-byte lengths arrived in 6.1. Both are tried either way. */
function preferLongNames(release: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  if (!m) return true;
  const major = Number(m[1]);
  return major > 6 || (major === 6 && Number(m[2]) >= 1);
}

async function readTokens(read: ReadKernel, tableAddr: bigint, indexAddr: bigint): Promise<Buffer[]> {
  const index = await read(indexAddr, 512);
  let max = 0;
  for (let i = 0; i < 256; i++) max = Math.max(max, index.readUInt16LE(i * 2));
  // Tokens are short (scripts/kallsyms.c merges pairs into at most a few dozen characters).
  const table = await read(tableAddr, max + 256);
  const tokens: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const at = index.readUInt16LE(i * 2);
    const end = table.indexOf(0, at);
    if (end < 0) throw new KallsymsError(`kallsyms token ${i} at ${toHex(tableAddr + BigInt(at))} has no terminating NUL within 256 bytes: the token table is damaged`);
    tokens.push(Buffer.from(table.subarray(at, end)));
  }
  return tokens;
}

/** Symbols whose index the decoder needs: _stext checks the address encoding, _text/_end bound lookups. */
const WANTED = ['_stext', '_text', '_end'] as const;
type Wanted = (typeof WANTED)[number];

interface DecodedNames {
  /** Offset of each symbol's entry in the names blob. */
  offsets: Uint32Array;
  types: Uint8Array;
  nameAt: (i: number) => string;
  index: Partial<Record<Wanted, number>>;
  encoding: NameEncoding;
}

/** Reads kallsyms_names in chunks as decoding proceeds; tries the preferred length encoding first. */
async function decodeNames(read: ReadKernel, addr: bigint, count: number, tokens: Buffer[], long: boolean): Promise<DecodedNames> {
  const blob = new GrowingRead(read, addr);
  const first = await decodeNamesWith(blob, count, tokens, long);
  if (typeof first !== 'string') return first;
  const second = await decodeNamesWith(blob, count, tokens, !long);
  if (typeof second !== 'string') return second;
  throw new KallsymsError(`kallsyms_names at ${toHex(addr)} does not decode with either known name encoding (${first}; ${second}): the table is damaged or uses an encoding vmpm does not know`);
}

/**
 * One pass over every entry: expands each name into a scratch buffer to check it (a type letter, then
 * printable characters), records where it starts, and keeps no strings: names are expanded again
 * only when looked up. ~100k symbols stay well inside the 200 ms budget this way.
 */
async function decodeNamesWith(blob: GrowingRead, count: number, tokens: Buffer[], long: boolean): Promise<DecodedNames | string> {
  const encoding: NameEncoding = long ? 'ULEB128 lengths (Linux 6.1 and later)' : 'one-byte lengths (Linux up to 6.0)';
  const offsets = new Uint32Array(count);
  const types = new Uint8Array(count);
  const wanted = WANTED.map((w) => Buffer.from(w, 'latin1'));
  const index: Partial<Record<Wanted, number>> = {};
  const scratch = Buffer.alloc(MAX_TOKENS * Math.max(1, ...tokens.map((t) => t.length)));
  const expand = (buf: Buffer, at: number): { n: number; next: number } | string => {
    let len = buf[at]!;
    let off = at + 1;
    if (long && (len & 0x80) !== 0) {
      len = (len & 0x7f) | (buf[off]! << 7);
      off += 1;
    }
    if (len === 0 || len > MAX_TOKENS) return `${len} tokens`;
    let n = 0;
    for (let j = 0; j < len; j++) {
      const t = tokens[buf[off + j]!]!;
      for (let k = 0; k < t.length; k++) scratch[n++] = t[k]!;
    }
    return { n, next: off + len };
  };
  // Per-token facts, so the pass over ~100k entries never copies bytes: whether a token is all
  // printable, its length, and (for a name's first token) whether it starts with a type letter.
  const isType = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x3f;
  const printable = tokens.map((t) => t.length > 0 && t.every((c) => c >= 0x21 && c <= 0x7e));
  const tokenLength = tokens.map((t) => t.length);
  const wantedLengths = new Set(wanted.map((w) => w.length + 1));
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + 2 + MAX_TOKENS > blob.data.length) await blob.ensure(off + 2 + MAX_TOKENS);
    const buf = blob.data;
    let len = buf[off]!;
    let at = off + 1;
    if (long && (len & 0x80) !== 0) {
      len = (len & 0x7f) | (buf[at]! << 7);
      at += 1;
    }
    if (len === 0 || len > MAX_TOKENS) return `${encoding}: symbol ${i} has ${len} tokens`;
    const first = tokens[buf[at]!]!;
    let ok = isType(first[0]!);
    let n = 0;
    for (let j = 0; j < len && ok; j++) {
      const tok = buf[at + j]!;
      ok = printable[tok]!;
      n += tokenLength[tok]!;
    }
    if (!ok || n < 2) {
      const r = expand(buf, off);
      const shown = typeof r === 'string' ? r : JSON.stringify(scratch.toString('latin1', 0, Math.min(r.n, 40)));
      return `${encoding}: symbol ${i} decodes to ${shown}`;
    }
    offsets[i] = off;
    types[i] = first[0]!;
    if (wantedLengths.has(n)) {
      expand(buf, off);
      for (let w = 0; w < wanted.length; w++) {
        const name = wanted[w]!;
        if (n - 1 === name.length && index[WANTED[w]!] === undefined && scratch.compare(name, 0, name.length, 1, n) === 0) index[WANTED[w]!] = i;
      }
    }
    off = at + len;
  }
  const data = blob.data;
  const nameAt = (i: number): string => {
    const r = expand(data, offsets[i]!);
    return typeof r === 'string' ? '?' : scratch.toString('latin1', 1, r.n);
  };
  return { offsets, types, nameAt, index, encoding };
}

/** A prefix of guest memory at `addr` that grows on demand, up to MAX_NAMES_BYTES. */
class GrowingRead {
  data: Buffer = Buffer.alloc(0);
  constructor(
    private readonly read: ReadKernel,
    private readonly addr: bigint,
  ) {}
  async ensure(length: number): Promise<void> {
    if (length <= this.data.length) return;
    if (length > MAX_NAMES_BYTES) throw new KallsymsError(`kallsyms_names at ${toHex(this.addr)} runs past ${MAX_NAMES_BYTES} bytes: the symbol count or the lengths are damaged`);
    const want = Math.min(MAX_NAMES_BYTES, Math.max(length, this.data.length + NAMES_CHUNK));
    const more = await this.read(this.addr + BigInt(this.data.length), want - this.data.length);
    this.data = Buffer.concat([this.data, more]);
  }
}

type Encoder = (i: number) => bigint;

async function decodeAddresses(info: Vmcoreinfo, read: ReadKernel, count: number, stextIndex: number): Promise<{ values: BigUint64Array; encoding: AddressEncoding }> {
  const stext = info.symbol('_stext');
  const absoluteAddr = info.symbolIfAny('kallsyms_addresses');
  if (absoluteAddr !== undefined && info.symbolIfAny('kallsyms_offsets') === undefined) {
    const raw = await read(absoluteAddr, count * 8);
    const values = new BigUint64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + count * 8));
    if (values[stextIndex] !== stext) throw new KallsymsError(`kallsyms_addresses gives _stext ${toHex(values[stextIndex]!)}, VMCOREINFO says ${toHex(stext)}: the table is damaged`);
    return { values, encoding: 'absolute addresses (kallsyms_addresses)' };
  }
  const offsetsAddr = info.symbol('kallsyms_offsets');
  const raw = await read(offsetsAddr, count * 4);
  const baseAddr = info.symbolIfAny('kallsyms_relative_base');
  const base = baseAddr === undefined ? undefined : (await read(baseAddr, 8)).readBigUInt64LE(0);
  const mask = (1n << 64n) - 1n;
  // Each candidate, in BigInt form, decides by _stext; the chosen one then fills the whole array.
  const candidates: Array<{ encoding: AddressEncoding; at: Encoder; kind: 'base' | 'percpu' | 'place' }> = [];
  if (base !== undefined) {
    candidates.push({ encoding: 'base-relative offsets (kallsyms_relative_base + u32)', kind: 'base', at: (i) => (base + BigInt(raw.readUInt32LE(i * 4))) & mask });
    candidates.push({
      encoding: 'base-relative offsets with absolute per-cpu (x86-64, Linux up to 6.14)',
      kind: 'percpu',
      at: (i) => {
        const v = raw.readInt32LE(i * 4);
        return v >= 0 ? BigInt(v) : (base - 1n - BigInt(v)) & mask;
      },
    });
  }
  candidates.push({ encoding: 'place-relative offsets (Linux 7.0 and later)', kind: 'place', at: (i) => (offsetsAddr + BigInt(i * 4) + BigInt(raw.readInt32LE(i * 4))) & mask });
  const chosen = candidates.find((c) => c.at(stextIndex) === stext);
  if (chosen === undefined) {
    const tried = candidates.map((c) => `${c.encoding}: ${toHex(c.at(stextIndex))}`).join('; ');
    throw new KallsymsError(`no known kallsyms address encoding reproduces VMCOREINFO's _stext ${toHex(stext)} (${tried}): the offsets are damaged or the encoding is new`);
  }
  return { values: fillAddresses(raw, count, chosen.kind, chosen.kind === 'place' ? offsetsAddr : base!), encoding: chosen.encoding };
}

/**
 * The addresses with 32-bit number arithmetic written as two halves, instead of a bigint per symbol
 * (which made garbage collection the largest cost of decoding).
 */
function fillAddresses(raw: Buffer, count: number, kind: 'base' | 'percpu' | 'place', base: bigint): BigUint64Array {
  const values = new BigUint64Array(count);
  const out = new DataView(values.buffer);
  const baseHi = Number(base >> 32n);
  const baseLo = Number(base & 0xffffffffn);
  const put = (i: number, delta: number) => {
    // base + delta, with delta in (-2^33, 2^33): carry/borrow into the high half, wrapping at 2^64.
    let lo = baseLo + delta;
    let hi = baseHi;
    const carry = Math.floor(lo / 0x1_0000_0000);
    lo -= carry * 0x1_0000_0000;
    hi = (hi + carry) >>> 0;
    out.setUint32(i * 8, lo, true);
    out.setUint32(i * 8 + 4, hi, true);
  };
  for (let i = 0; i < count; i++) {
    if (kind === 'base') put(i, raw.readUInt32LE(i * 4));
    else if (kind === 'place') put(i, i * 4 + raw.readInt32LE(i * 4));
    else {
      const v = raw.readInt32LE(i * 4);
      if (v >= 0) {
        out.setUint32(i * 8, v, true);
        out.setUint32(i * 8 + 4, 0, true);
      } else put(i, -1 - v);
    }
  }
  return values;
}
