import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleReader } from '../../src/bundle';
import { buildDiff, buildErrors, buildEvents, buildInfo, buildMemmap, buildRegs, loadSections, readSection, searchBundle } from '../../src/analysis';
import { VmpmError } from '../../src/util/errors';
import { forgeJson } from './forge';

/**
 * The bundle fuzzer (issue 13): mutates real bundles and runs every analyst path on each mutant
 * in-process. A correct result or a VmpmError (what the CLI prints as one `vmpm: ...` line, exit 1)
 * is fine; anything else thrown is a crash, a case over its time budget is a hang, and a byte
 * mutation that `verify` does not notice is an undetected change. Seeded and deterministic.
 */
export interface FuzzStats {
  cases: number;
  crashes: Array<{ kind: string; detail: string }>;
  /** Cases still unfinished HANG_GRACE_MS after their budget: a real hang. */
  hangs: number;
  /** Cases over their budget that did finish in the grace period (a loaded machine, or a slow path). */
  slow: Array<{ case: number; seed: string; kind: string; ms: number; cpuMs: number }>;
  undetected: number;
  refused: number;
  ms: number;
  peakRssBytes: number;
}

/** xorshift32: the same seed gives the same cases on every machine. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const JSON_SECTIONS = ['manifest', 'cpus', 'memmap', 'block', 'errors', 'events', 'qmp-transcript'];

/** Hostile values: wrong types, huge numbers and lengths, deep nesting, bad hex. */
function hostileValue(r: () => number): unknown {
  const pick = Math.floor(r() * 16);
  switch (pick) {
    case 0: return null;
    case 1: return 5;
    case 2: return 'x';
    case 3: return [];
    case 4: return {};
    case 5: return 1e308;
    case 6: return -1;
    case 7: return '0xZZ';
    case 8: return '0x' + 'f'.repeat(70);
    case 9: return 'A'.repeat(1 << 20);
    case 10: return Array.from({ length: 20_000 }, () => ({}));
    case 11: { let v: unknown = 1; for (let i = 0; i < 40; i++) v = [v]; return v; }
    case 12: return { __proto__: { polluted: true }, constructor: 1 };
    case 13: return Number.MAX_SAFE_INTEGER + 2;
    case 14: return true;
    default: return '\u0000\ud800';
  }
}

/** Replaces (or deletes) one randomly chosen node of `value`. */
function mutateJson(value: unknown, r: () => number): unknown {
  if (value === null || typeof value !== 'object' || r() < 0.15) return hostileValue(r);
  if (Array.isArray(value)) {
    if (value.length === 0) return [hostileValue(r)];
    const copy = [...value];
    const i = Math.floor(r() * copy.length);
    copy[i] = mutateJson(copy[i], r);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return hostileValue(r);
  const k = keys[Math.floor(r() * keys.length)]!;
  if (r() < 0.15) delete copy[k];
  else copy[k] = mutateJson(copy[k], r);
  return copy;
}

export interface Seed {
  name: string;
  bytes: Buffer;
  sections: Record<string, unknown>;
}

export async function loadSeed(name: string, path: string): Promise<Seed> {
  const reader = await BundleReader.open(path);
  const sections: Record<string, unknown> = {};
  try {
    for (const s of reader.sections()) if (s.type === 'json') sections[s.name] = await reader.json(s.name);
  } finally {
    await reader.close();
  }
  return { name, bytes: readFileSync(path), sections };
}

/** One mutant: byte-level (flips, truncation) or structural (a JSON section rewritten, digests recomputed). */
export function mutate(seed: Seed, r: () => number): { bytes: Buffer; kind: 'bytes' | 'structural' } {
  if (r() < 0.4) {
    const b = Buffer.from(seed.bytes);
    if (r() < 0.1) return { bytes: b.subarray(0, Math.floor(r() * b.length)), kind: 'bytes' };
    const flips = 1 + Math.floor(r() * 8);
    for (let i = 0; i < flips; i++) {
      const at = Math.floor(r() * b.length);
      b[at] = (b[at]! ^ (1 + Math.floor(r() * 255))) & 0xff;
    }
    return { bytes: b, kind: 'bytes' };
  }
  const names = JSON_SECTIONS.filter((n) => n in seed.sections);
  const name = names[Math.floor(r() * names.length)]!;
  return { bytes: forgeJson(seed.bytes, { [name]: mutateJson(seed.sections[name], r) }), kind: 'structural' };
}

/** Every analyst path a CLI command takes; throws whatever they throw. */
async function analyse(path: string, seedPath: string): Promise<void> {
  const reader = await BundleReader.open(path);
  try {
    const s = await loadSections(reader);
    await buildInfo(reader, { verify: false, sections: s });
    buildRegs(s.cpus);
    buildMemmap(reader, s.memmap);
    buildErrors(s.errors);
    buildEvents(s.events);
    await searchBundle(reader, { kind: 'text', text: 'FORENSIC' }, { limit: 10, memmap: s.memmap });
    for (const sec of reader.sections()) await readSection(reader, sec.name);
    const seed = await BundleReader.open(seedPath);
    try {
      await buildDiff(seed, reader);
    } finally {
      await seed.close();
    }
  } finally {
    await reader.close();
  }
}

/**
 * Over its budget, a case gets this much longer before it counts as a hang: on two cores shared with
 * other jobs a niced fuzzer's case can take seconds of wall time and little CPU. Slow cases are
 * reported with their wall and CPU time so a slow path is still visible.
 */
const HANG_GRACE_MS = 120_000;

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'hang'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'hang'>((res) => (timer = setTimeout(() => res('hang'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message.split('\n')[0]}` : String(err);
}

/** Runs `cases` mutants of `seeds` (round robin) in `dir`. `budgetMs` bounds one case (a hang). */
export async function fuzz(options: { seeds: Array<Seed & { path: string }>; cases: number; seed: number; dir: string; budgetMs?: number; onProgress?: (s: FuzzStats) => void }): Promise<FuzzStats> {
  const r = rng(options.seed);
  const stats: FuzzStats = { cases: 0, crashes: [], hangs: 0, slow: [], undetected: 0, refused: 0, ms: 0, peakRssBytes: 0 };
  const t0 = Date.now();
  const file = join(options.dir, 'mutant.vmpm');
  for (let i = 0; i < options.cases; i++) {
    const seed = options.seeds[i % options.seeds.length]!;
    const m = mutate(seed, r);
    writeFileSync(file, m.bytes);
    const started = Date.now();
    const cpu0 = process.cpuUsage();
    const work = (async () => {
        if (m.kind === 'bytes' && !m.bytes.equals(seed.bytes)) {
          try {
            const v = await BundleReader.verifyFile(file);
            await v.reader?.close();
            if (v.ok) stats.undetected++;
          } catch (err) {
            if (!(err instanceof VmpmError)) throw err;
          }
        }
        await analyse(file, seed.path);
      })().then(
        () => 'ok' as const,
        (err: unknown) => (err instanceof VmpmError ? ('refused' as const) : { crash: describe(err) }),
      );
    let outcome = await withTimeout(work, options.budgetMs ?? 10_000);
    if (outcome === 'hang') {
      outcome = await withTimeout(work, HANG_GRACE_MS);
      if (outcome !== 'hang') {
        const cpu = process.cpuUsage(cpu0);
        stats.slow.push({ case: i, seed: seed.name, kind: m.kind, ms: Date.now() - started, cpuMs: Math.round((cpu.user + cpu.system) / 1000) });
      }
    }
    stats.cases++;
    if (outcome === 'hang') stats.hangs++;
    else if (outcome === 'refused') stats.refused++;
    else if (typeof outcome === 'object') stats.crashes.push({ kind: m.kind, detail: outcome.crash });
    stats.peakRssBytes = Math.max(stats.peakRssBytes, process.memoryUsage().rss);
    if (options.onProgress && i % 500 === 499) options.onProgress({ ...stats, ms: Date.now() - t0 });
  }
  stats.ms = Date.now() - t0;
  return stats;
}
