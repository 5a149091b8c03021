/**
 * `vmpm redact`: a copy of a bundle with chosen bytes erased (stored as zeros; pages that became all
 * zero are elided like any zero page). Every other page is copied unchanged, so its digest equals the
 * source's; the `redaction` section records what was erased, why, by whom, and the source digest of
 * every page that changed. One streaming pass over the source memory, 1 MiB at a time.
 */
import { BundleReader, BundleWriter, PAGE_SIZE, readCustodySection, REDACTION_SECTION, type RedactionRecord, type RedactionSection } from '../bundle';
import { VmpmError } from '../util/errors';
import { collectGarbage } from '../util/gc';
import { toHex } from '../util/hex';
import { currentActor, sourceOf } from './actor';
import { interrupted } from './files';
import { IntervalAccumulator, mergeIntervals, overlapping, type Interval } from './intervals';
import { resolveVirtual } from './virt';

/** Bytes read, scanned and written per step; a multiple of the page size. */
const WINDOW = 1 << 20;
/** Longest pattern match (as `vmpm search --regex`): bounds the look-ahead kept past each window. */
export const PATTERN_MAX_MATCH = 4096;
const ZERO_SLOT = 0xffffffff;
/** Windows between full collections (collectGarbage: the pass's garbage is 1 MiB Buffers). */
const GC_EVERY = 16;
const ZEROS = Buffer.alloc(WINDOW);

/** True if any byte of buf[a, b) is not zero (memcmp speed). */
function nonZero(buf: Buffer, a: number, b: number): boolean {
  return b > a && buf.compare(ZEROS, 0, b - a, a, b) !== 0;
}

export interface RedactOptions {
  ranges?: Interval[];
  virt?: Array<Interval & { cpu?: number }>;
  patterns?: string[];
  reason?: string;
  force?: boolean;
  signal?: AbortSignal;
}

export interface RedactResult {
  input: string;
  output: string;
  outputBytes: number;
  sha256: string;
  record: RedactionRecord;
  /** Things the user must know: sections that also match a pattern (copied unchanged), empty requests. */
  warnings: string[];
}

export function compilePattern(source: string): RegExp {
  try {
    return new RegExp(source, 'g');
  } catch (err) {
    throw new VmpmError(`--pattern ${JSON.stringify(source)} is not a valid JavaScript regular expression: ${(err as Error).message}`, { exitCode: 2 });
  }
}

export async function redactBundle(input: string, output: string, options: RedactOptions): Promise<RedactResult> {
  const patterns = (options.patterns ?? []).map(compilePattern);
  if (!options.ranges?.length && !options.virt?.length && patterns.length === 0) {
    throw new VmpmError('redact needs at least one --range, --virt or --pattern', { exitCode: 2 });
  }
  const src = await BundleReader.open(input);
  try {
    if (src.digestsOnly) throw new VmpmError(`${input} is a slim bundle: it has no memory contents to redact`);
    const requests: string[] = [];
    const warnings: string[] = [];
    const fixed: Interval[] = [];
    for (const r of options.ranges ?? []) {
      requests.push(`range ${toHex(r.start)}-${toHex(r.end)}`);
      fixed.push(r);
    }
    for (const v of options.virt ?? []) {
      const res = await resolveVirtual(src, v.start, v.end, v.cpu);
      requests.push(
        `virt ${toHex(v.start)}-${toHex(v.end)} (${res.description}): ${res.mappedPages} mapped page(s) captured, ${res.unmappedPages} unmapped, ${res.uncapturedPages} mapped but not captured`,
      );
      if (res.mappedPages === 0) warnings.push(`--virt ${toHex(v.start)}-${toHex(v.end)}: no captured page backs it (${res.unmappedPages} unmapped)`);
      fixed.push(...res.physical);
    }
    for (const p of patterns) requests.push(`pattern /${p.source}/`);
    const source = await sourceOf(src);
    const previous = src.has(REDACTION_SECTION) ? (await readCustodySection(src, REDACTION_SECTION)).records : [];
    // The copy has the source's pages and at most its unique pages (plus the few an erase changes):
    // the writer sizes its index once instead of doubling it. No compression workers: this pass
    // holds two bundles' indexes, and each worker (its isolate, zstd heap and malloc arena) cost
    // ~30 MiB of peak RSS on a 4 GiB bundle (bench/custody.ts, README Performance); hashing and
    // compressing on this thread reuses the zstd heap the reader already has.
    const stats = src.stats();
    const w = await BundleWriter.create(output, {
      overwrite: options.force === true,
      workers: 0,
      expected: { pages: stats.pages, uniquePages: stats.uniquePages },
    });
    try {
      for (const s of src.sections()) {
        if (s.name === REDACTION_SECTION) continue;
        const data = await src.raw(s.name);
        const text = patterns.length ? data.toString('latin1') : '';
        for (const p of patterns) {
          p.lastIndex = 0;
          if (p.test(text)) warnings.push(`section "${s.name}" also matches /${p.source}/ and was copied unchanged (redact erases guest memory only)`);
        }
        await w.copySection(s.name, s.type, data);
      }
      const erased = await copyMemory(src, w, mergeIntervals(fixed), patterns, options.signal);
      const record: RedactionRecord = {
        ...currentActor(),
        source,
        reason: options.reason ?? null,
        requests,
        erased: erased.intervals.map((i) => ({ start: toHex(i.start), end: toHex(i.end), bytes: toHex(i.end - i.start) })),
        pages: erased.pages,
      };
      if (erased.intervals.length === 0) warnings.push('nothing was erased: no request covers captured memory');
      await w.addJsonSection(REDACTION_SECTION, { records: [...previous, record] } satisfies RedactionSection);
      const done = await w.finish();
      return { input, output, outputBytes: done.size, sha256: done.sha256, record, warnings };
    } catch (err) {
      await w.abort();
      throw err;
    }
  } finally {
    await src.close();
  }
}

interface Erased {
  intervals: Interval[];
  pages: RedactionRecord['pages'];
}

/** Copies every range in page-index order, erasing `fixed` intervals and pattern matches on the way. */
async function copyMemory(src: BundleReader, w: BundleWriter, fixed: Interval[], patterns: RegExp[], signal: AbortSignal | undefined): Promise<Erased> {
  const tables = src.memoryTables();
  const acc = new IntervalAccumulator();
  const pages: RedactionRecord['pages'] = [];
  let windows = 0;
  for (const r of tables.ranges) {
    const rw = w.beginMemoryRange(r.start, r.name === undefined ? {} : { name: r.name });
    let carry: Interval[] = [];
    for (let off = 0n; off < r.length; off += BigInt(WINDOW)) {
      if (signal?.aborted) throw interrupted(signal);
      if (++windows % GC_EVERY === 0) collectGarbage();
      const at = r.start + off;
      const n = Number(r.length - off < BigInt(WINDOW) ? r.length - off : BigInt(WINDOW));
      const firstPage = r.firstPage + Number(off / BigInt(PAGE_SIZE));
      const pageCount = Math.ceil(n / PAGE_SIZE);
      let allZero = true;
      for (let p = firstPage; p < firstPage + pageCount && allZero; p++) allZero = tables.pageIndex[p] === ZERO_SLOT;
      if (allZero) {
        // Nothing to erase in zero pages, and no pattern match to look for that could change a byte;
        // a --range over them is still recorded as erased (it is, trivially).
        for (const e of overlapping(fixed, at, at + BigInt(n))) acc.add(e);
        await rw.write(ZEROS.subarray(0, n));
        carry = carry.filter((c) => c.end > at + BigInt(n));
        continue;
      }
      const look = Number(r.length - off - BigInt(n) < BigInt(PATTERN_MAX_MATCH) ? r.length - off - BigInt(n) : BigInt(PATTERN_MAX_MATCH));
      const buf = await src.read(at, n + look);
      const found: Interval[] = [...carry];
      if (patterns.length) {
        const text = buf.toString('latin1');
        for (const p of patterns) {
          p.lastIndex = 0;
          for (let m = p.exec(text); m !== null; m = p.exec(text)) {
            if (m[0].length === 0) {
              p.lastIndex++;
              continue;
            }
            if (m.index >= n) break;
            const len = Math.min(m[0].length, PATTERN_MAX_MATCH);
            found.push({ start: at + BigInt(m.index), end: at + BigInt(m.index + len) });
          }
        }
      }
      const end = at + BigInt(n);
      carry = found.filter((c) => c.end > end).map((c) => ({ start: end, end: c.end }));
      const erase = mergeIntervals([...overlapping(fixed, at, end), ...found.map((f) => ({ start: f.start, end: f.end < end ? f.end : end }))]);
      const touched = new Set<number>();
      for (const e of erase) {
        const a = Number(e.start - at);
        const b = Number(e.end - at);
        // A page counts as changed only if some erased byte in it was not already zero.
        for (let pg = Math.floor(a / PAGE_SIZE); pg * PAGE_SIZE < b; pg++) {
          if (nonZero(buf, Math.max(a, pg * PAGE_SIZE), Math.min(b, (pg + 1) * PAGE_SIZE))) touched.add(pg);
        }
        buf.fill(0, a, b);
        acc.add(e);
      }
      for (const pg of [...touched].sort((x, y) => x - y)) {
        const addr = at + BigInt(pg * PAGE_SIZE);
        pages.push({ addr: toHex(addr), originalSha256: src.pageDigest(addr)!.toString('hex') });
      }
      await rw.write(buf.subarray(0, n));
    }
    await rw.end(r.length);
  }
  return { intervals: acc.result(), pages };
}
