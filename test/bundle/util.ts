/** Shared helpers for the bundle tests: deterministic data, temp dirs, synthetic layouts. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { BundleReader, PAGE_SIZE } from '../../src/bundle';
import { FOOTER_SIZE } from '../../src/bundle/format';
import { parseFooter, parseHeader, parseTrailer } from '../../src/bundle/structure';

/** mulberry32: small deterministic PRNG so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(Math.ceil(n / 4) * 4);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((rand() * 0x100000000) >>> 0, i);
  return b.subarray(0, n);
}

/**
 * A memory image of `pages` pages mixing zero pages, repeats of a few earlier pages (dedup) and
 * random pages, with an optional partial tail.
 */
export function sparseImage(rand: () => number, pages: number, tail = 0): Buffer {
  const img = Buffer.alloc(pages * PAGE_SIZE + tail);
  const pool: Buffer[] = [];
  for (let p = 0; p < pages; p++) {
    const r = rand();
    let page: Buffer | undefined;
    if (r < 0.4) continue; // zero
    if (r < 0.6 && pool.length > 0) page = pool[Math.floor(rand() * pool.length)]!;
    else {
      page = randomBytes(rand, PAGE_SIZE);
      if (rand() < 0.5) page.fill(0, Math.floor(rand() * PAGE_SIZE)); // compressible
      if (pool.length < 8) pool.push(page);
    }
    page.copy(img, p * PAGE_SIZE);
  }
  if (tail > 0) randomBytes(rand, tail + 4).copy(img, pages * PAGE_SIZE, 0, tail);
  return img;
}

/** Yields `data` in chunks of varying, non-page-multiple sizes. */
export async function* chunked(data: Buffer, rand: () => number): AsyncIterable<Buffer> {
  let off = 0;
  while (off < data.length) {
    const n = 1 + Math.floor(rand() * 3 * PAGE_SIZE + (rand() < 0.1 ? 300_000 : 0));
    yield data.subarray(off, off + n);
    off += n;
  }
}

export function tempDir(): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-bundle-test-'));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Page kinds in a fixed, interleaved order so both frame kinds fill and end partly filled. */
export function mixedImage(pages: number): { image: Buffer; kinds: string[] } {
  const rand = prng(12);
  const text = Buffer.from('kernel: ext4 mounted filesystem with ordered data mode. '.repeat(80)).subarray(0, PAGE_SIZE);
  const image = Buffer.alloc(pages * PAGE_SIZE);
  const kinds: string[] = [];
  for (let p = 0; p < pages; p++) {
    const k = ['random', 'text', 'zero', 'random', 'halfzero', 'random', 'dup', 'text'][p % 8]!;
    kinds.push(k);
    const at = p * PAGE_SIZE;
    if (k === 'random') randomBytes(rand, PAGE_SIZE).copy(image, at);
    else if (k === 'text') {
      text.copy(image, at);
      image.writeUInt32LE(p, at); // unique
    } else if (k === 'halfzero') {
      const r = randomBytes(rand, PAGE_SIZE);
      for (let i = 0; i < PAGE_SIZE; i += 2) r[i] = 0;
      r.copy(image, at);
    } else if (k === 'dup') image.fill(0x5a, at, at + PAGE_SIZE);
  }
  return { image, kinds };
}

/** Every frame of a bundle, as stored (compressed or raw), with its slot range. */
export function framesOf(path: string): Array<{ bytes: Buffer; firstSlot: number; slotCount: number }> {
  const file = readFileSync(path);
  const header = parseHeader(path, file, file.length);
  const footer = parseFooter(path, file.subarray(file.length - FOOTER_SIZE), file.length, header);
  const trailer = file.subarray(Number(footer.trailerOffset), Number(footer.trailerOffset + footer.trailerLength));
  const s = parseTrailer(path, trailer, header.headerSize, Number(footer.trailerOffset));
  return s.frames.map((f) => ({ bytes: file.subarray(f.offset, f.offset + f.compressedLength), firstSlot: f.firstSlot, slotCount: f.slotCount }));
}

/** The image mixedImage() gives, split in two ranges (0 and 1 MiB) so slots and the page index span both. */
export const MIXED_RANGES = (image: Buffer): Array<[bigint, Buffer]> => [
  [0n, image.subarray(0, 100 * PAGE_SIZE)],
  [0x100000n, image.subarray(100 * PAGE_SIZE)],
];

/** The bundle at `path` reads back `ranges` exactly and verifies. */
export async function assertReadsBack(path: string, ranges: Array<[bigint, Buffer]>): Promise<void> {
  const reader = await BundleReader.open(path);
  try {
    for (const [start, data] of ranges) assert.deepEqual(await reader.read(start, data.length), data);
    assert.equal((await reader.verify()).ok, true);
  } finally {
    await reader.close();
  }
}
