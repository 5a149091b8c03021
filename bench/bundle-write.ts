/**
 * Bundle write benchmark (issue 3, Performance): for deterministic synthetic RAM images of 256 MiB
 * and 1 GiB (realistic mix, all-random, all-zero) prints vmpm's write throughput, bundle size, peak
 * RSS and random 4 KiB read latency, beside `zstd -3 -T2` on the same raw file. Each measurement
 * runs in its own child process. Heavy: run it once, not in a loop.
 *
 * Where the native zstd is installed, each image is also written with VMPM_CODEC=portable (zstd-codec).
 *
 *   npm run build && node dist/bench/bundle-write.js [--sizes 256,1024] [--kinds realistic,random,zero] [--keep DIR]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { compressionCodec } from '../src/bundle/codec';
import { type ImageKind, writeSyntheticImage } from './lib/synthetic';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function child(args: string[], env: Record<string, string> = {}): Record<string, number> {
  const r = spawnSync(process.execPath, [join(__dirname, 'lib', 'child.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`bench child ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

/**
 * The reference: the zstd CLI at level 3 on two threads, file to file, on the same raw image.
 * CPU time and peak RSS come from GNU time when it is installed.
 */
function zstdCli(image: string, out: string): { ms: number; cpuMs: number; size: number; maxRssMiB: number } {
  const args = ['-3', '-T2', '-q', '-f', '-o', out, image];
  const t0 = process.hrtime.bigint();
  let cpuMs = NaN;
  let maxRssMiB = NaN;
  if (existsSync('/usr/bin/time')) {
    const r = spawnSync('/usr/bin/time', ['-f', 'TIME %U %S %M', 'zstd', ...args], { encoding: 'utf8' });
    const m = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
    if (r.status !== 0 || !m) throw new Error(`zstd failed: ${r.stderr}`);
    cpuMs = (Number(m[1]) + Number(m[2])) * 1000;
    maxRssMiB = Math.round(Number(m[3]) / 1024);
  } else {
    execFileSync('zstd', args);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const size = statSync(out).size;
  rmSync(out, { force: true });
  return { ms, cpuMs, size, maxRssMiB };
}

const MiB = 1024 * 1024;

async function main(): Promise<void> {
  const sizes = arg('--sizes', '256,1024').split(',').map(Number);
  const kinds = arg('--kinds', 'realistic,random,zero').split(',') as ImageKind[];
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-bench-'));
  const codec = compressionCodec();
  const native = codec.path === 'native';
  process.stderr.write(`codec: ${codec.name}; load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  const table = new Table({
    head: ['image', 'vmpm s (cpu s)', 'MB/s', 'bundle MiB', 'ratio', 'RSS MiB', '4K read med/p90 ms', 'zstd -3 -T2 s (cpu s)', '.zst MiB', 'zstd RSS', 'time vs zstd', 'size vs .zst'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
  });
  try {
    for (const size of sizes) {
      for (const kind of kinds) {
        const image = join(dir, `${kind}-${size}m.bin`);
        await writeSyntheticImage(image, kind, size * MiB);
        execFileSync('cat', [image], { stdio: ['ignore', 'ignore', 'inherit'] }); // warm the page cache for both contenders
        const z = zstdCli(image, join(dir, `${kind}-${size}m.zst`));
        // The defaults (1 MiB frames, level 3); for the large realistic image also 4 MiB frames (better
        // ratio, slower cold reads) and level 1 (less CPU, larger bundle), to show the trade-offs.
        const variants: Array<{ label: string; frameBytes: number; level: number; env?: Record<string, string> }> = [{ label: '', frameBytes: 0, level: 0 }];
        // The portable codec (zstd-codec) where the native one is installed: what the optional
        // dependency gives, in the same run.
        if (native) variants.push({ label: ', portable codec', frameBytes: 0, level: 0, env: { VMPM_CODEC: 'portable' } });
        // Without raw-block frames for incompressible pages: what that lever gives, in the same run.
        if (kind !== 'zero') variants.push({ label: ', no raw frames', frameBytes: 0, level: 0, env: { VMPM_BENCH_RAW_FRAMES: '0' } });
        if (kind === 'realistic' && size === Math.max(...sizes)) {
          variants.push({ label: ', 4 MiB frames', frameBytes: 4 * MiB, level: 0 }, { label: ', level 1', frameBytes: 0, level: 1 });
        }
        for (const { label, frameBytes, level, env } of variants) {
          const bundle = join(dir, `${kind}-${size}m.vmpm`);
          const w = child(['write', image, bundle, String(frameBytes), String(level)], env);
          const r = child(['reads', bundle, '200']);
          const bytes = size * MiB;
          table.push([
            `${kind} ${size} MiB${label}`,
            `${(w.ms! / 1000).toFixed(2)} (${(w.cpuMs! / 1000).toFixed(2)})`,
            ((bytes / 1e6) / (w.ms! / 1000)).toFixed(0),
            (w.size! / MiB).toFixed(1),
            (bytes / w.size!).toFixed(2),
            String(w.maxRssMiB),
            `${r.medianMs!.toFixed(2)} / ${r.p90Ms!.toFixed(2)}`,
            `${(z.ms / 1000).toFixed(2)} (${(z.cpuMs / 1000).toFixed(2)})`,
            (z.size / MiB).toFixed(1),
            String(z.maxRssMiB),
            (w.ms! / z.ms).toFixed(2),
            (w.size! / z.size).toFixed(3),
          ]);
          rmSync(bundle, { force: true });
        }
        process.stderr.write(`done: ${kind} ${size} MiB\n`);
        rmSync(image, { force: true });
      }
    }
  } finally {
    if (process.argv.includes('--keep')) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
  process.stderr.write(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  process.stdout.write(`${table.toString()}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
