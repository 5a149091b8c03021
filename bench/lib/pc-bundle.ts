/**
 * The synthetic 4 GiB PC-layout guest bundle the diff and custody benchmarks build: 3 GiB below the
 * PCI hole + 1 GiB above 4 GiB, a memmap section naming both ranges as captured RAM, pages from a
 * caller's generator (each bench decides what the pages hold), written at zstd level 1.
 */
import { BundleWriter } from '../../src/bundle';
import { toHex } from '../../src/util/hex';

const GiB = 1n << 30n;

export const PC_RANGES: ReadonlyArray<{ start: bigint; length: bigint; name: string }> = [
  { start: 0n, length: 3n * GiB, name: 'pc.ram' },
  { start: 4n * GiB, length: GiB, name: 'pc.ram@4G' },
];

/** The pages of one range, in 1 MiB chunks (any chunk size works). */
export type RangeImage = (start: bigint, length: bigint) => AsyncIterable<Buffer>;

/** Writes the bundle to `path`; returns the milliseconds it took. */
export async function buildPcBundle(path: string, image: RangeImage): Promise<number> {
  const t0 = Date.now();
  const w = await BundleWriter.create(path, { level: 1 });
  await w.addJsonSection('memmap', {
    regions: PC_RANGES.map((r) => ({ name: r.name, kind: 'ram', start: toHex(r.start), end: toHex(r.start + r.length), captured: true })),
    sizeSummary: null,
    memdevs: [],
    memoryDevices: [],
    raw: '',
  });
  for (const r of PC_RANGES) await w.addMemoryRange(r.start, image(r.start, r.length), { name: r.name, expectedLength: r.length });
  await w.finish();
  return Date.now() - t0;
}

/** `--name VALUE` from the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
