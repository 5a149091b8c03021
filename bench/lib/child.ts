/**
 * Runs one measurement in a fresh process so its peak RSS is its own, and prints one JSON line.
 *   node child.js write IMAGE OUT.vmpm [FRAME_BYTES|0 [LEVEL]] -> { ms, cpuMs, size, maxRssMiB }
 *   node child.js reads OUT.vmpm COUNT   -> { medianMs, p90Ms, maxRssMiB }
 */
import { createReadStream, statSync } from 'node:fs';
import { BundleReader, BundleWriter, type WriterOptions } from '../../src/bundle';
import { mulberry32 } from './synthetic';

const rssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

async function write(image: string, out: string, frameBytes?: number, level?: number): Promise<void> {
  const started = process.hrtime.bigint();
  const options: WriterOptions = { overwrite: true };
  if (frameBytes) options.frameBytes = frameBytes;
  if (level) options.level = level;
  // The bench compares with and without raw-block frames for incompressible pages.
  if (process.env.VMPM_BENCH_RAW_FRAMES === '0') options.rawFrames = false;
  const w = await BundleWriter.create(out, options);
  await w.addJsonSection('manifest', { origin: 'synthetic', image });
  await w.addMemoryRange(0n, createReadStream(image, { highWaterMark: 1024 * 1024 }), { name: 'ram', expectedLength: BigInt(statSync(image).size) });
  const res = await w.finish();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const cpu = process.cpuUsage(); // all threads of this process: main and compression workers
  process.stdout.write(`${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, size: res.size, maxRssMiB: rssMiB() })}\n`);
}

async function reads(bundle: string, count: number): Promise<void> {
  const r = await BundleReader.open(bundle);
  const range = r.ranges()[0]!;
  const pages = Number(range.length / 4096n);
  const rand = mulberry32(1234);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const addr = range.start + BigInt(Math.floor(rand() * pages) * 4096);
    const t0 = process.hrtime.bigint();
    await r.read(addr, 4096);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await r.close();
  times.sort((a, b) => a - b);
  const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  process.stdout.write(`${JSON.stringify({ medianMs: at(0.5), p90Ms: at(0.9), maxRssMiB: rssMiB() })}\n`);
}

const [mode, a, b, c, d] = process.argv.slice(2);
const run = mode === 'write' ? write(a!, b!, c ? Number(c) : undefined, d ? Number(d) : undefined) : reads(a!, Number(b ?? 200));
run.catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
