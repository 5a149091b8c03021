import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BundleReader, BundleWriter, PAGE_SIZE, type WriterOptions } from '../../src/bundle';
import { DigestTable } from '../../src/bundle/pages';
import { prng, sparseImage, tempDir } from './util';

/**
 * The writer's in-memory index sized up front (WriterOptions.expected, what redact passes) and its
 * in-place slot compaction and part-by-part trailer: none of it may change a single output byte.
 */
async function write(path: string, image: Buffer, options: WriterOptions): Promise<Buffer> {
  const w = await BundleWriter.create(path, { workers: 0, frameBytes: 16 * PAGE_SIZE, ...options });
  await w.addJsonSection('manifest', { n: 1 });
  // Two ranges, so slots and dedup span them; small frames so both frame kinds leave holes to close.
  await w.addMemoryRange(0n, [image.subarray(0, image.length / 2)], { name: 'low' });
  await w.addMemoryRange(0x100000000n, [image.subarray(image.length / 2)], { name: 'high' });
  await w.finish();
  return readFileSync(path);
}

test('a bundle is byte-identical whatever page counts the writer was told to expect', async () => {
  const t = tempDir();
  try {
    const image = sparseImage(prng(7), 2048);
    const plain = await write(t.path('plain.vmpm'), image, {});
    const r = await BundleReader.open(t.path('plain.vmpm'));
    const stats = r.stats();
    assert.equal((await r.verify()).ok, true);
    await r.close();
    assert.ok(stats.uniquePages > 500 && stats.frames > 20, `enough slots and frames: ${stats.uniquePages} slots, ${stats.frames} frames`);
    for (const expected of [
      { pages: stats.pages, uniquePages: stats.uniquePages },
      { pages: 10, uniquePages: 3 }, // too small: grows past the hint
      { pages: 4 * stats.pages, uniquePages: 4 * stats.uniquePages },
    ]) {
      const out = await write(t.path(`e${expected.pages}.vmpm`), image, { expected });
      assert.ok(out.equals(plain), `expected ${JSON.stringify(expected)}: same bytes`);
    }
  } finally {
    t.cleanup();
  }
});

test('DigestTable: lookups survive growth and in-place compaction of slot gaps', () => {
  const digest = (i: number): Buffer => {
    const d = Buffer.alloc(32);
    d.writeUInt32LE(Math.imul(i, 0x9e3779b1) >>> 0, 0);
    d.writeUInt32LE(i, 28);
    return d;
  };
  const table = new DigestTable(4);
  // Slots in runs of 5 with gaps of 3 (as frame reservations leave them), 3000 digests: several doublings.
  const runs: Array<{ from: number; count: number }> = [];
  let n = 0;
  for (let base = 0; n < 3000; base += 8) {
    for (let k = 0; k < 5; k++) table.setAt(base + k, digest(n++));
    runs.push({ from: base, count: 5 });
  }
  for (let i = 0; i < 3000; i++) assert.equal(table.find(digest(i)), Math.floor(i / 5) * 8 + (i % 5));
  assert.equal(table.find(digest(3000)), -1);
  table.compact(runs);
  assert.equal(table.count, 3000);
  for (let i = 0; i < 3000; i++) assert.equal(table.find(digest(i)), i);
  for (let i = 0; i < 3000; i++) assert.ok(table.bytes().subarray(i * 32, i * 32 + 32).equals(digest(i)));
});
