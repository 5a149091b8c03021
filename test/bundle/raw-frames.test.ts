import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleReader, BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { FOOTER_SIZE } from '../../src/bundle/format';
import { parseFooter, parseHeader, parseTrailer } from '../../src/bundle/structure';
import { looksIncompressible, rawFrame } from '../../src/bundle/raw-frame';
import { requireTools } from '../helpers/requirements';
import { prng, randomBytes, tempDir } from './util';

/** Page kinds in a fixed, interleaved order so both frame kinds fill and end partly filled. */
function mixedImage(pages: number): { image: Buffer; kinds: string[] } {
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

/** Every frame of a bundle, as stored (compressed or raw), with its slot range. */
function framesOf(path: string): Array<{ bytes: Buffer; firstSlot: number; slotCount: number }> {
  const file = readFileSync(path);
  const header = parseHeader(path, file, file.length);
  const footer = parseFooter(path, file.subarray(file.length - FOOTER_SIZE), file.length, header);
  const trailer = file.subarray(Number(footer.trailerOffset), Number(footer.trailerOffset + footer.trailerLength));
  const s = parseTrailer(path, trailer, header.headerSize, Number(footer.trailerOffset));
  return s.frames.map((f) => ({ bytes: file.subarray(f.offset, f.offset + f.compressedLength), firstSlot: f.firstSlot, slotCount: f.slotCount }));
}

for (const workers of [0, 2]) {
  test(`bundles with raw frames (${workers} workers) read back exactly, verify, and zstd -d decodes every frame`, { skip: requireTools('zstd') }, async () => {
    const tmp = tempDir();
    const dir = tmp.dir;
    const { image } = mixedImage(203); // 16 KiB frames: 4 pages each, several partly filled batches
    const sizes: Record<string, number> = {};
    for (const rawFrames of [true, false]) {
      const path = join(dir, `b-${rawFrames}.vmpm`);
      const w = await BundleWriter.create(path, { frameBytes: 4 * PAGE_SIZE, workers, rawFrames });
      // Two ranges, so slots and the page index span more than one range.
      await w.addMemoryRange(0n, [image.subarray(0, 100 * PAGE_SIZE)]);
      await w.addMemoryRange(0x100000n, [image.subarray(100 * PAGE_SIZE)]);
      const done = await w.finish();
      sizes[String(rawFrames)] = done.size;
      const reader = await BundleReader.open(path);
      try {
        assert.deepEqual(await reader.read(0n, 100 * PAGE_SIZE), image.subarray(0, 100 * PAGE_SIZE));
        assert.deepEqual(await reader.read(0x100000n, 103 * PAGE_SIZE), image.subarray(100 * PAGE_SIZE));
        assert.equal((await reader.verify()).ok, true);
      } finally {
        await reader.close();
      }
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
