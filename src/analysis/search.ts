import { UsageError } from '../util/errors';
import { toHex, type Hex } from '../util/hex';
import type { AnalysisBundle } from './source';
import { capturedRuns, regionSpans } from './sections';
import { regionAt, type AddrRange, type RegionSpan } from './ranges';
import type { MemmapSection } from '../bundle/schema';

export type SearchPattern = { kind: 'text'; text: string } | { kind: 'hex'; hex: string } | { kind: 'regex'; source: string };

/** Longest match a regex may report: it bounds the overlap kept between chunks (and so memory). */
export const REGEX_MAX_MATCH = 4096;
const CONTEXT = 16;
const BATCH = 1 << 20;

export interface SearchMatch {
  address: Hex;
  length: number;
  region: string | null;
  /** Up to 16 bytes either side, clipped to the captured run the match is in. */
  context: { start: Hex; hex: string; ascii: string };
}

/** `vmpm search --json`. */
export interface SearchModel {
  pattern: { kind: SearchPattern['kind']; text: string; bytes: number | null };
  matches: SearchMatch[];
  /** True when --limit stopped the scan early (more matches may exist). */
  truncated: boolean;
  limit: number;
}

interface Matcher {
  /** Upper bound of a match's length in bytes. */
  maxLength: number;
  /** Calls `hit` for each non-overlapping match starting in [from, to); stops when hit returns false. */
  scan(buf: Buffer, from: number, to: number, hit: (pos: number, len: number) => boolean): void;
}

export function parseHexPattern(text: string): Buffer {
  const digits = text.replace(/^0x/i, '').replace(/[\s:,_-]|\\x|0x/gi, '');
  if (digits.length === 0 || digits.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(digits)) {
    throw new UsageError(`--hex expects an even number of hex digits (e.g. "de ad be ef"), got ${JSON.stringify(text)}`);
  }
  return Buffer.from(digits, 'hex');
}

function bytesMatcher(needle: Buffer): Matcher {
  return {
    maxLength: needle.length,
    scan(buf, from, to, hit) {
      for (let pos = buf.indexOf(needle, from); pos !== -1 && pos < to; pos = buf.indexOf(needle, pos + needle.length)) {
        if (!hit(pos, needle.length)) return;
      }
    },
  };
}

function regexMatcher(source: string): Matcher {
  let re: RegExp;
  try {
    re = new RegExp(source, 'g');
  } catch (err) {
    throw new UsageError(`--regex ${JSON.stringify(source)} is not a valid JavaScript regular expression: ${(err as Error).message}`);
  }
  return {
    maxLength: REGEX_MAX_MATCH,
    scan(buf, from, to, hit) {
      // latin1 maps each byte to one UTF-16 unit, so string indexes are byte offsets and \xNN matches byte NN.
      const text = buf.toString('latin1');
      re.lastIndex = from;
      for (let m = re.exec(text); m !== null && m.index < to; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex = m.index + 1; // empty matches say nothing about memory; skip them
          continue;
        }
        if (!hit(m.index, Math.min(m[0].length, REGEX_MAX_MATCH))) return;
      }
    },
  };
}

export function makeMatcher(p: SearchPattern): Matcher {
  if (p.kind === 'text') {
    if (p.text.length === 0) throw new UsageError('--text needs a non-empty string');
    return bytesMatcher(Buffer.from(p.text, 'utf8'));
  }
  if (p.kind === 'hex') return bytesMatcher(parseHexPattern(p.hex));
  return regexMatcher(p.source);
}

/**
 * A sliding window over one contiguous run of guest-physical memory. Data is batched to ~1 MiB and
 * scanned; the last maxLength-1 bytes are kept so a match straddling two batches (pages, frames) is
 * found exactly once: a match is accepted only when it starts before that tail, or at the end of a run.
 */
class RunScanner {
  private parts: Buffer[] = [];
  private size = 0;
  private bufStart = 0n;
  private acceptFrom = 0n;
  private open = false;
  stopped = false;

  constructor(
    private readonly matcher: Matcher,
    private readonly onMatch: (addr: bigint, len: number) => boolean,
  ) {}

  private get end(): bigint {
    return this.bufStart + BigInt(this.size);
  }

  append(addr: bigint, data: Buffer): void {
    if (this.stopped || data.length === 0) return;
    if (!this.open || addr !== this.end) {
      this.flush();
      this.parts = [];
      this.size = 0;
      this.bufStart = addr;
      this.acceptFrom = addr;
      this.open = true;
    }
    this.parts.push(data);
    this.size += data.length;
    if (this.size >= BATCH) this.scan(false);
  }

  /** End of a contiguous run: every remaining match is complete. */
  flush(): void {
    if (this.open && !this.stopped) this.scan(true);
    this.open = false;
  }

  private scan(final: boolean): void {
    const buf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    const limit = final ? buf.length : buf.length - (this.matcher.maxLength - 1);
    const from = Number(this.acceptFrom - this.bufStart);
    if (limit > from) {
      this.matcher.scan(buf, from, limit, (pos, len) => {
        const addr = this.bufStart + BigInt(pos);
        this.acceptFrom = addr + BigInt(len);
        if (!this.onMatch(addr, len)) this.stopped = true;
        return !this.stopped;
      });
    }
    if (final) return;
    const keepFrom = Math.max(0, limit);
    // Copy the tail so the 1 MiB batch can be collected.
    const tail = Buffer.from(buf.subarray(keepFrom));
    this.bufStart += BigInt(keepFrom);
    if (this.acceptFrom < this.bufStart) this.acceptFrom = this.bufStart;
    this.parts = [tail];
    this.size = tail.length;
  }
}

/**
 * Streams every captured page of the bundle once, in address order, with memory bounded by the batch
 * size plus the overlap. Zero pages are not decompressed (they are not stored); they are synthesised
 * only where a match could touch them: next to data (maxLength-1 bytes each side), or throughout when
 * the pattern itself matches zeros. Matches never span an uncaptured hole.
 */
export async function searchBundle(
  bundle: AnalysisBundle,
  pattern: SearchPattern,
  options: { limit?: number; memmap?: MemmapSection | null } = {},
): Promise<SearchModel> {
  const limit = options.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit must be a positive integer, got ${limit}`);
  const matcher = makeMatcher(pattern);
  const { found, truncated, runs } = await scanPages(bundle, matcher, limit);
  const regions = regionSpans(options.memmap ?? null);
  const matches: SearchMatch[] = [];
  for (const f of found) matches.push(await describeMatch(bundle, f, regionAt(runs, f.addr), regionAt(regions, f.addr)));
  const text = pattern.kind === 'text' ? pattern.text : pattern.kind === 'hex' ? pattern.hex : pattern.source;
  return {
    pattern: { kind: pattern.kind, text, bytes: pattern.kind === 'regex' ? null : matcher.maxLength },
    matches,
    truncated,
    limit,
  };
}

/** The scan itself: every captured run fed through one RunScanner, zero pages synthesised only where a match could touch them. */
async function scanPages(
  bundle: AnalysisBundle,
  matcher: Matcher,
  limit: number,
): Promise<{ found: Array<{ addr: bigint; len: number }>; truncated: boolean; runs: AddrRange[] }> {
  const found: Array<{ addr: bigint; len: number }> = [];
  let truncated = false;
  const scanner = new RunScanner(matcher, (addr, len) => {
    if (found.length >= limit) {
      truncated = true;
      return false;
    }
    found.push({ addr, len });
    return true;
  });

  const probe = Buffer.alloc(matcher.maxLength * 2);
  let zeroMatches = false;
  matcher.scan(probe, 0, probe.length, () => ((zeroMatches = true), false));
  const zeroChunk = Buffer.alloc(Math.max(64 * 1024, matcher.maxLength));
  const overlap = BigInt(matcher.maxLength - 1);

  const feedZeros = (from: bigint, to: bigint): void => {
    if (from >= to || scanner.stopped) return;
    if (zeroMatches) {
      for (let a = from; a < to && !scanner.stopped; ) {
        const n = to - a < BigInt(zeroChunk.length) ? Number(to - a) : zeroChunk.length;
        scanner.append(a, zeroChunk.subarray(0, n));
        a += BigInt(n);
      }
      return;
    }
    if (overlap === 0n) return;
    if (to - from <= 2n * overlap) {
      scanner.append(from, zeroChunk.subarray(0, Number(to - from)));
    } else {
      scanner.append(from, zeroChunk.subarray(0, Number(overlap)));
      scanner.append(to - overlap, zeroChunk.subarray(0, Number(overlap)));
    }
  };

  const runs = capturedRuns(bundle);
  let ri = 0;
  let cursor = runs[0]?.start ?? 0n;
  const nextRun = (): void => {
    feedZeros(cursor, runs[ri]!.end);
    scanner.flush();
    ri++;
    cursor = runs[ri]?.start ?? 0n;
  };
  for await (const page of bundle.dataPages()) {
    if (scanner.stopped) break;
    while (ri < runs.length && page.addr >= runs[ri]!.end) nextRun();
    if (ri >= runs.length) break;
    if (page.addr < cursor) continue;
    feedZeros(cursor, page.addr);
    const runEnd = runs[ri]!.end;
    const end = page.addr + BigInt(page.data.length) < runEnd ? page.addr + BigInt(page.data.length) : runEnd;
    scanner.append(page.addr, page.data.subarray(0, Number(end - page.addr)));
    cursor = end;
  }
  while (ri < runs.length && !scanner.stopped) nextRun();
  scanner.flush();

  return { found, truncated, runs };
}

/** One match with up to CONTEXT bytes each side, never past the captured run it lies in. */
async function describeMatch(
  bundle: AnalysisBundle,
  f: { addr: bigint; len: number },
  run: AddrRange | undefined,
  region: RegionSpan | undefined,
): Promise<SearchMatch> {
  const cStart = run && f.addr - BigInt(CONTEXT) < run.start ? run.start : f.addr - BigInt(CONTEXT) < 0n ? 0n : f.addr - BigInt(CONTEXT);
  const wantEnd = f.addr + BigInt(f.len + CONTEXT);
  const cEnd = run && wantEnd > run.end ? run.end : wantEnd;
  const ctx = await bundle.read(cStart, Number(cEnd - cStart), { zeroFill: true });
  return {
    address: toHex(f.addr),
    length: f.len,
    region: region?.name ?? null,
    context: { start: toHex(cStart), hex: ctx.toString('hex'), ascii: printable(ctx) },
  };
}

export function printable(buf: Buffer): string {
  let s = '';
  for (const b of buf) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  return s;
}
