/**
 * Diff benchmark (issue 5, Performance goal: two 4 GiB bundles diffed in under 0.5 s, independent of
 * how much RAM is zero). Builds two synthetic 4 GiB PC-layout bundles once (3 GiB below the PCI hole +
 * 1 GiB above 4 GiB; ~1% data pages, B changes 1000 of them and adds 500) into a temp dir that is reused
 * on later runs, then times the memory diff from page digests in-process and `vmpm diff --json` end to end.
 * The obvious alternative, measured in the same run: the same two images as raw (sparse) files, as a
 * `pmemsave`/`dump-guest-memory` would leave them, compared with `cmp -l`.
 *
 *   npm run build && node dist/bench/diff.js [--dir DIR] [--runs 3] [--clean]
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { BundleReader } from '../src/bundle';
import { buildDiff, diffPageIndexes } from '../src/analysis';
import { arg, buildPcBundle, PC_RANGES } from './lib/pc-bundle';

const PAGE = 4096;

/** Deterministic page selection: which pages hold data in A, which B changes or adds. */
function pageKind(addr: bigint, side: 'a' | 'b'): 'zero' | 'data' | 'changed' {
  const n = Number(addr / 4096n);
  const h = Math.imul(n ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  const inA = h % 100 === 0; // ~1% data pages
  if (side === 'a') return inA ? 'data' : 'zero';
  if (inA && h % 41 === 0) return 'changed'; // ~ 1/41 of data pages change
  if (!inA && h % 20011 === 7) return 'changed'; // a few zero pages gain data
  return inA ? 'data' : 'zero';
}

async function* image(start: bigint, length: bigint, side: 'a' | 'b'): AsyncGenerator<Buffer> {
  const CHUNK = 1 << 20;
  const zero = Buffer.alloc(CHUNK);
  for (let at = start; at < start + length; at += BigInt(CHUNK)) {
    let buf: Buffer | undefined;
    for (let off = 0; off < CHUNK; off += PAGE) {
      const addr = at + BigInt(off);
      const kind = pageKind(addr, side);
      if (kind === 'zero') continue;
      buf ??= Buffer.alloc(CHUNK);
      buf.writeBigUInt64LE(addr, off);
      buf.writeUInt32LE(kind === 'changed' ? 0xb0b0b0b0 : 0xa0a0a0a0, off + 8);
    }
    yield buf ?? zero;
  }
}

/**
 * The same image as one raw file (the ranges back to back, as pmemsave of each range would give),
 * written sparse: only data pages are written, so building it is cheap while `cmp` still has to read
 * all 4 GiB of it.
 */
function writeRaw(path: string, side: 'a' | 'b'): void {
  const fd = openSync(path, 'w', 0o600);
  const page = Buffer.alloc(PAGE);
  let fileOffset = 0;
  for (const r of PC_RANGES) {
    for (let addr = r.start; addr < r.start + r.length; addr += BigInt(PAGE), fileOffset += PAGE) {
      const kind = pageKind(addr, side);
      if (kind === 'zero') continue;
      page.fill(0);
      page.writeBigUInt64LE(addr, 0);
      page.writeUInt32LE(kind === 'changed' ? 0xb0b0b0b0 : 0xa0a0a0a0, 8);
      writeSync(fd, page, 0, PAGE, fileOffset);
    }
  }
  ftruncateSync(fd, fileOffset);
  closeSync(fd);
}

function ms(from: bigint): number {
  return Number(process.hrtime.bigint() - from) / 1e6;
}

async function main(): Promise<void> {
  const dir = arg('--dir', join(tmpdir(), 'vmpm-bench-diff'));
  const runs = Number(arg('--runs', '3'));
  if (process.argv.includes('--clean')) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const a = join(dir, 'a-4g.vmpm');
  const b = join(dir, 'b-4g.vmpm');
  for (const [path, side] of [[a, 'a'], [b, 'b']] as const) {
    if (existsSync(path)) continue;
    process.stderr.write(`building ${path} (4 GiB, once) ...\n`);
    process.stderr.write(`  built in ${(await buildPcBundle(path, (start, length) => image(start, length, side))) / 1000} s\n`);
  }
  const rawA = join(dir, 'a-4g.raw');
  const rawB = join(dir, 'b-4g.raw');
  for (const [path, side] of [[rawA, 'a'], [rawB, 'b']] as const) if (!existsSync(path)) writeRaw(path, side);
  const table = new Table({ head: ['measurement', 'run', 'ms', 'notes'], style: { head: [], border: [] } });
  for (let run = 1; run <= runs; run++) {
    let t = process.hrtime.bigint();
    const ra = await BundleReader.open(a);
    const rb = await BundleReader.open(b);
    const openMs = ms(t);
    t = process.hrtime.bigint();
    const raw = diffPageIndexes(ra.pages(), rb.pages(), [], []);
    const digestMs = ms(t);
    t = process.hrtime.bigint();
    const model = await buildDiff(ra, rb);
    const fullMs = ms(t);
    await ra.close();
    await rb.close();
    table.push(['open both bundles', run, openMs.toFixed(1), `${statSync(a).size + statSync(b).size} bytes on disk`]);
    table.push(['page-digest merge join', run, digestMs.toFixed(1), `${raw.counts.changedPages} changed, ${raw.counts.unchangedPages} unchanged pages`]);
    table.push(['buildDiff (sections + attribution)', run, fullMs.toFixed(1), `${model.memory.changed.length} changed ranges`]);
    t = process.hrtime.bigint();
    const cli = spawnSync(process.execPath, [join(__dirname, '..', '..', 'bin', 'vmpm'), 'diff', a, b, '--json'], { encoding: 'utf8', maxBuffer: 256 << 20 });
    const cliMs = ms(t);
    if (cli.status !== 0) throw new Error(`vmpm diff failed: ${cli.stderr}`);
    table.push(['vmpm diff --json (process, end to end)', run, cliMs.toFixed(1), `${cli.stdout.length} bytes of JSON, incl. node startup`]);
    t = process.hrtime.bigint();
    const cmp = spawnSync('sh', ['-c', `cmp -l '${rawA}' '${rawB}' | wc -l`], { encoding: 'utf8' });
    const cmpMs = ms(t);
    if (cmp.status !== 0) throw new Error(`cmp failed: ${cmp.stderr}`);
    table.push(['alternative: cmp -l of the raw images', run, cmpMs.toFixed(1), `${cmp.stdout.trim()} differing bytes; 2 x 4 GiB read (sparse, from page cache)`]);
  }
  process.stdout.write(`${table.toString()}\ngoal: diff of two 4 GiB bundles < 500 ms\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/diff: ${String(err)}\n`);
  process.exitCode = 1;
});
