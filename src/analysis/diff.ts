import { toHex, type Hex } from '../util/hex';
import type { CpuState, ErrorRecord, JournalEvent, MemRegion } from '../bundle/schema';
import { REDACTION_SECTION } from '../bundle/custody-schema';
import type { AnalysisBundle } from './source';
import { loadSections, regionSpans, type BundleSections } from './sections';
import { attributeRanges, PageCoalescer, PAGE, type AttributedRange, type RegionSpan } from './ranges';

/** One side of a diff, for headings. */
export interface DiffSide {
  file: string;
  name: string | null;
  uuid: string | null;
  arch: string | null;
  createdAt: string | null;
  status: string | null;
  /** Slim: page digests without contents (pages compare by digest; no bytes to show). */
  slim: boolean;
  /** Bytes were erased by vmpm redact (they read as zeros and differ from the original's). */
  redacted: boolean;
}

export interface JsonRange {
  start: Hex;
  end: Hex;
  region: string | null;
  pages: number;
}

/** `vmpm diff --json`. A is the older/baseline bundle, B the newer one; `a`/`b` keys follow that. */
export interface DiffModel {
  a: DiffSide;
  b: DiffSide;
  identity: { sameVm: boolean | null; changes: Array<{ field: string; a: string | null; b: string | null }> };
  cpus: Array<{
    index: number;
    /** Present when the vCPU exists in only one bundle. */
    onlyIn?: 'a' | 'b';
    mode?: { a: string; b: string };
    registers: Record<string, { a: string | null; b: string | null }>;
  }>;
  memmap: {
    added: Array<{ name: string; kind: string; start: Hex; end: Hex }>;
    removed: Array<{ name: string; kind: string; start: Hex; end: Hex }>;
    changed: Array<{ name: string; a: { kind: string; start: Hex; end: Hex }; b: { kind: string; start: Hex; end: Hex } }>;
  };
  memory: {
    /** Pages captured in both whose SHA-256 differs. */
    changed: JsonRange[];
    /** Pages captured only in B. */
    added: JsonRange[];
    /** Pages captured only in A. */
    removed: JsonRange[];
    counts: { changedPages: number; addedPages: number; removedPages: number; unchangedPages: number };
    byRegion: Array<{ region: string | null; changedPages: number; addedPages: number; removedPages: number }>;
  };
  errors: { new: ErrorRecord[] };
  events: { new: JournalEvent[] };
  /** Only with showBytes: 16-byte rows that differ in the first few changed pages. */
  bytes?: Array<{ page: Hex; rows: Array<{ offset: Hex; a: string; b: string }>; moreRows: number }>;
}

export interface MemoryDiffRaw {
  changed: AttributedRange[];
  added: AttributedRange[];
  removed: AttributedRange[];
  counts: DiffModel['memory']['counts'];
}

/**
 * Compares two page indexes by digest alone (no decompression): a merge join over both ascending
 * page lists. Cost is proportional to the number of pages, not to how much RAM is non-zero.
 */
export function diffPageIndexes(
  a: Iterable<{ addr: bigint; zero: boolean; digest: Buffer }>,
  b: Iterable<{ addr: bigint; zero: boolean; digest: Buffer }>,
  regionsA: readonly RegionSpan[],
  regionsB: readonly RegionSpan[],
): MemoryDiffRaw {
  const changed = new PageCoalescer();
  const added = new PageCoalescer();
  const removed = new PageCoalescer();
  let unchanged = 0;
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  let x = ia.next();
  let y = ib.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && x.value.addr < y.value.addr)) {
      removed.add(x.value!.addr);
      x = ia.next();
    } else if (x.done || y.value.addr < x.value.addr) {
      added.add(y.value.addr);
      y = ib.next();
    } else {
      if ((x.value.zero && y.value.zero) || x.value.digest.equals(y.value.digest)) unchanged++;
      else changed.add(x.value.addr);
      x = ia.next();
      y = ib.next();
    }
  }
  const regionsForNew = regionsB.length > 0 ? regionsB : regionsA;
  const regionsForOld = regionsA.length > 0 ? regionsA : regionsB;
  return {
    changed: attributeRanges(changed.finish(), regionsForNew),
    added: attributeRanges(added.finish(), regionsForNew),
    removed: attributeRanges(removed.finish(), regionsForOld),
    counts: { changedPages: changed.count, addedPages: added.count, removedPages: removed.count, unchangedPages: unchanged },
  };
}

function jsonRanges(r: AttributedRange[]): JsonRange[] {
  return r.map((x) => ({ start: toHex(x.start), end: toHex(x.end), region: x.region, pages: x.pages }));
}

function byRegion(raw: MemoryDiffRaw): DiffModel['memory']['byRegion'] {
  const map = new Map<string | null, { region: string | null; changedPages: number; addedPages: number; removedPages: number }>();
  const bump = (list: AttributedRange[], key: 'changedPages' | 'addedPages' | 'removedPages'): void => {
    for (const r of list) {
      let e = map.get(r.region);
      if (!e) map.set(r.region, (e = { region: r.region, changedPages: 0, addedPages: 0, removedPages: 0 }));
      e[key] += r.pages;
    }
  };
  bump(raw.changed, 'changedPages');
  bump(raw.added, 'addedPages');
  bump(raw.removed, 'removedPages');
  return [...map.values()];
}

function side(bundle: AnalysisBundle, s: BundleSections): DiffSide {
  return {
    file: bundle.path,
    name: s.manifest?.vm.name ?? null,
    uuid: s.manifest?.vm.uuid ?? null,
    arch: s.manifest?.vm.arch ?? s.cpus?.arch ?? null,
    createdAt: s.manifest?.createdAt ?? null,
    status: s.manifest?.runState.after.status ?? null,
    slim: bundle.digestsOnly === true,
    redacted: bundle.has(REDACTION_SECTION),
  };
}

function identityChanges(a: BundleSections, b: BundleSections): DiffModel['identity'] {
  const fields: Array<[string, (s: BundleSections) => string | null | undefined]> = [
    ['vm.name', (s) => s.manifest?.vm.name],
    ['vm.uuid', (s) => s.manifest?.vm.uuid],
    ['vm.arch', (s) => s.manifest?.vm.arch ?? s.cpus?.arch],
    ['vm.cpuCount', (s) => (s.manifest ? String(s.manifest.vm.cpuCount) : s.cpus ? String(s.cpus.cpus.length) : null)],
    ['vm.ramSize', (s) => s.manifest?.vm.ramSize],
    ['qemu.version', (s) => s.manifest?.qemu?.version],
    ['runState.status', (s) => s.manifest?.runState.after.status],
    ['runState.reason', (s) => s.manifest?.runState.after.reason],
  ];
  const changes: DiffModel['identity']['changes'] = [];
  for (const [field, get] of fields) {
    const va = get(a) ?? null;
    const vb = get(b) ?? null;
    if (va !== vb) changes.push({ field, a: va, b: vb });
  }
  const ua = a.manifest?.vm.uuid ?? null;
  const ub = b.manifest?.vm.uuid ?? null;
  const na = a.manifest?.vm.name ?? null;
  const nb = b.manifest?.vm.name ?? null;
  const sameVm = ua && ub ? ua === ub : na && nb ? na === nb : null;
  return { sameVm, changes };
}

function sameValue(a: string, b: string): boolean {
  try {
    return BigInt(a) === BigInt(b);
  } catch {
    return a === b;
  }
}

export function diffCpus(a: CpuState[], b: CpuState[]): DiffModel['cpus'] {
  const out: DiffModel['cpus'] = [];
  const indexes = [...new Set([...a.map((c) => c.index), ...b.map((c) => c.index)])].sort((x, y) => x - y);
  for (const index of indexes) {
    const ca = a.find((c) => c.index === index);
    const cb = b.find((c) => c.index === index);
    const registers: Record<string, { a: string | null; b: string | null }> = {};
    const names = [...new Set([...Object.keys(ca?.registers ?? {}), ...Object.keys(cb?.registers ?? {})])];
    for (const n of names) {
      const va = ca?.registers[n] ?? null;
      const vb = cb?.registers[n] ?? null;
      if (va === null || vb === null ? va !== vb : !sameValue(va, vb)) registers[n] = { a: va, b: vb };
    }
    const entry: DiffModel['cpus'][number] = { index, registers };
    if (!ca) entry.onlyIn = 'b';
    if (!cb) entry.onlyIn = 'a';
    if (ca && cb && ca.mode !== cb.mode) entry.mode = { a: ca.mode, b: cb.mode };
    if (entry.onlyIn || entry.mode || Object.keys(registers).length > 0) out.push(entry);
  }
  return out;
}

export function diffMemmap(a: MemRegion[], b: MemRegion[]): DiffModel['memmap'] {
  const key = (r: MemRegion): string => `${r.name}@${r.start}`;
  const short = (r: MemRegion): { name: string; kind: string; start: Hex; end: Hex } => ({ name: r.name, kind: r.kind, start: r.start as Hex, end: r.end as Hex });
  const mapA = new Map(a.map((r) => [key(r), r]));
  const mapB = new Map(b.map((r) => [key(r), r]));
  const added = b.filter((r) => !mapA.has(key(r))).map(short);
  const removed = a.filter((r) => !mapB.has(key(r))).map(short);
  const changed: DiffModel['memmap']['changed'] = [];
  for (const [k, ra] of mapA) {
    const rb = mapB.get(k);
    if (rb && (ra.end !== rb.end || ra.kind !== rb.kind)) {
      changed.push({ name: ra.name, a: { kind: ra.kind, start: ra.start as Hex, end: ra.end as Hex }, b: { kind: rb.kind, start: rb.start as Hex, end: rb.end as Hex } });
    }
  }
  return { added, removed, changed };
}

function newErrors(a: ErrorRecord[], b: ErrorRecord[]): ErrorRecord[] {
  const seen = new Set(a.map((r) => `${r.time}|${r.kind}|${r.summary}`));
  return b.filter((r) => !seen.has(`${r.time}|${r.kind}|${r.summary}`));
}

function newEvents(a: JournalEvent[], b: JournalEvent[]): JournalEvent[] {
  const k = (e: JournalEvent): string => `${e.timestamp.seconds}.${e.timestamp.microseconds}|${e.event}|${JSON.stringify(e.data ?? null)}`;
  const seen = new Set(a.map(k));
  return b.filter((e) => !seen.has(k(e)));
}

async function byteRows(a: AnalysisBundle, b: AnalysisBundle, ranges: AttributedRange[], maxPages: number): Promise<NonNullable<DiffModel['bytes']>> {
  const out: NonNullable<DiffModel['bytes']> = [];
  const MAX_ROWS = 16;
  for (const r of ranges) {
    for (let page = r.start; page < r.end && out.length < maxPages; page += PAGE) {
      const pa = await a.read(page, Number(PAGE), { zeroFill: true });
      const pb = await b.read(page, Number(PAGE), { zeroFill: true });
      const rows: Array<{ offset: Hex; a: string; b: string }> = [];
      let more = 0;
      for (let off = 0; off < pa.length; off += 16) {
        const ra = pa.subarray(off, off + 16);
        const rb = pb.subarray(off, off + 16);
        if (ra.equals(rb)) continue;
        if (rows.length < MAX_ROWS) rows.push({ offset: toHex(page + BigInt(off)), a: ra.toString('hex'), b: rb.toString('hex') });
        else more++;
      }
      out.push({ page: toHex(page), rows, moreRows: more });
    }
    if (out.length >= maxPages) break;
  }
  return out;
}

export async function buildDiff(
  a: AnalysisBundle,
  b: AnalysisBundle,
  options: { showBytes?: boolean; bytePages?: number; sectionsA?: BundleSections; sectionsB?: BundleSections } = {},
): Promise<DiffModel> {
  const sa = options.sectionsA ?? (await loadSections(a));
  const sb = options.sectionsB ?? (await loadSections(b));
  const raw = diffPageIndexes(a.pages(), b.pages(), regionSpans(sa.memmap), regionSpans(sb.memmap));
  const model: DiffModel = {
    a: side(a, sa),
    b: side(b, sb),
    identity: identityChanges(sa, sb),
    cpus: diffCpus(sa.cpus?.cpus ?? [], sb.cpus?.cpus ?? []),
    memmap: diffMemmap(sa.memmap?.regions ?? [], sb.memmap?.regions ?? []),
    memory: {
      changed: jsonRanges(raw.changed),
      added: jsonRanges(raw.added),
      removed: jsonRanges(raw.removed),
      counts: raw.counts,
      byRegion: byRegion(raw),
    },
    errors: { new: newErrors(sa.errors?.records ?? [], sb.errors?.records ?? []) },
    events: { new: newEvents(sa.events?.events ?? [], sb.events?.events ?? []) },
  };
  if (options.showBytes && !model.a.slim && !model.b.slim) model.bytes = await byteRows(a, b, raw.changed, options.bytePages ?? 4);
  return model;
}
