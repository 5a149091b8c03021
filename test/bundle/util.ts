/** Shared helpers for the bundle tests: deterministic data, temp dirs, synthetic layouts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../../src/bundle';

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
