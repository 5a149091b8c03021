/**
 * Long fuzz runs: `node dist/bench/fuzz.js [CASES] [SEED]` (default 100000, 1). Prints cases/s and
 * counts crashes, hangs, undetected byte changes and the peak RSS; exits 1 on any crash, hang or
 * undetected change. Seeds: samples/*.vmpm and a synthetic bundle from the test helpers.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, PC_RANGES, PC_REGIONS } from './lib/build-bundle';
import { fuzz, loadSeed, type FuzzStats } from './lib/fuzz-engine';

function line(s: FuzzStats): string {
  return `${s.cases} cases in ${(s.ms / 1000).toFixed(1)} s (${(s.cases / (s.ms / 1000)).toFixed(1)} cases/s): ${s.crashes.length} crashes, ${s.hangs} hangs, ${s.slow.length} slow, ${s.undetected} undetected changes, ${s.refused} refused with one line, peak RSS ${Math.round(s.peakRssBytes / 1048576)} MiB`;
}

async function main(): Promise<void> {
  const cases = Number(process.argv[2] ?? 100_000);
  const seed = Number(process.argv[3] ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fuzz-bench-'));
  try {
    const samples = join(__dirname, '..', '..', 'samples');
    const seeds = [];
    for (const n of readdirSync(samples).filter((f) => f.endsWith('.vmpm'))) seeds.push({ ...(await loadSeed(n, join(samples, n))), path: join(samples, n) });
    const synthetic = join(dir, 'synthetic.vmpm');
    await buildBundle(synthetic, { regions: PC_REGIONS, ranges: PC_RANGES.slice(0, 2) });
    seeds.push({ ...(await loadSeed('synthetic', synthetic)), path: synthetic });
    // Progress (and every new crash) goes to stderr as it happens, so a run stopped early still
    // reports what it did: the fuzzer does not resume, a longer total is a further run with another SEED.
    let printed = 0;
    let slowPrinted = 0;
    const progress = (s: FuzzStats): void => {
      for (const c of s.crashes.slice(printed)) process.stderr.write(`  crash (${c.kind}): ${c.detail}\n`);
      for (const c of s.slow.slice(slowPrinted)) process.stderr.write(`  slow: case ${c.case} (${c.seed}, ${c.kind}) ${c.ms} ms wall, ${c.cpuMs} ms CPU\n`);
      printed = s.crashes.length;
      slowPrinted = s.slow.length;
      process.stderr.write(`${line(s)}\n`);
    };
    const stats = await fuzz({ seeds, cases, seed, dir, onProgress: progress });
    process.stdout.write(`${line(stats)}\n`);
    for (const c of stats.crashes.slice(0, 20)) process.stdout.write(`  crash (${c.kind}): ${c.detail}\n`);
    for (const c of stats.slow.slice(0, 20)) process.stdout.write(`  slow: case ${c.case} (${c.seed}, ${c.kind}) ${c.ms} ms wall, ${c.cpuMs} ms CPU\n`);
    process.exitCode = stats.crashes.length + stats.hangs + stats.undetected > 0 ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
