import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { looksIncompressible, rawFrame } from '../../src/bundle/raw-frame';
import { requireTools } from '../helpers/requirements';
import { assertReadsBack, framesOf, MIXED_RANGES, mixedImage, prng, randomBytes, tempDir } from './util';

test('the estimate: random pages look incompressible; text, half-zero and filled pages do not', () => {
  const { image, kinds } = mixedImage(64);
  kinds.forEach((k, p) => {
    if (k === 'zero') return;
    assert.equal(looksIncompressible(image, p * PAGE_SIZE), k === 'random', `page ${p} (${k})`);
  });
});

test('raw frames: any size is a standard zstd frame; zstd -d restores it', { skip: requireTools('zstd') }, () => {
  const rand = prng(5);
  for (const n of [1, 4096, 131072, 131073, 1 << 20]) {
    const data = randomBytes(rand, n);
    const frame = rawFrame(data);
    const out = spawnSync('zstd', ['-d', '-c'], { input: frame, maxBuffer: 1 << 24 });
    assert.equal(out.status, 0, out.stderr.toString());
    assert.ok(out.stdout.equals(data), `${n} bytes`);
  }
});

for (const workers of [0, 2]) {
  test(`bundles with raw frames (${workers} workers) read back exactly, verify, and zstd -d decodes every frame`, { skip: requireTools('zstd') }, async () => {
    const tmp = tempDir();
    const dir = tmp.dir;
    const { image } = mixedImage(203); // 16 KiB frames: 4 pages each, several partly filled batches
    const sizes: Record<string, number> = {};
    for (const rawFrames of [true, false]) {
      const path = join(dir, `b-${rawFrames}.vmpm`);
      const w = await BundleWriter.create(path, { frameBytes: 4 * PAGE_SIZE, workers, rawFrames });
      for (const [start, data] of MIXED_RANGES(image)) await w.addMemoryRange(start, [data]);
      const done = await w.finish();
      sizes[String(rawFrames)] = done.size;
      await assertReadsBack(path, MIXED_RANGES(image));
      const frames = framesOf(path);
      let next = 0;
      let raw = 0;
      for (const f of frames) {
        assert.equal(f.firstSlot, next, 'frames tile the slots in order');
        next += f.slotCount;
        const out = spawnSync('zstd', ['-d', '-c'], { input: f.bytes, maxBuffer: 1 << 24 });
        assert.equal(out.status, 0, out.stderr.toString());
        assert.equal(out.stdout.length, f.slotCount * PAGE_SIZE);
        if (f.bytes.length > f.slotCount * PAGE_SIZE) raw++;
      }
      if (rawFrames) assert.ok(raw >= 15, `${raw} raw frames`);
      else assert.equal(raw, 0);
    }
    // Raw frames cost nothing in size: zstd gains nothing on random pages (it even adds block
    // headers), and the other pages compress as well or better without them (386 KB vs 402 KB here).
    assert.ok(sizes.true! <= sizes.false! * 1.01, JSON.stringify(sizes));
    tmp.cleanup();
  });
}
