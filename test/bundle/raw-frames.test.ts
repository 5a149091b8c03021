import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { __decompressFrameByCodec, decompressFrame } from '../../src/bundle/codec';
import { looksIncompressible, rawFrame, rawFrameContent } from '../../src/bundle/raw-frame';
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

/** A raw-block frame made by hand: `blocks` sizes (summing to data.length), FCS field flag 0-3, single segment. */
function handRawFrame(data: Uint8Array, blocks: number[], fcsFlag: number): Buffer {
  const fcsBytes = [1, 2, 4, 8][fcsFlag]!;
  const parts: Buffer[] = [];
  const head = Buffer.alloc(5 + fcsBytes);
  head.writeUInt32LE(0xfd2fb528, 0);
  head[4] = (fcsFlag << 6) | 0x20;
  if (fcsBytes === 1) head[5] = data.length;
  else if (fcsBytes === 2) head.writeUInt16LE(data.length - 256, 5);
  else if (fcsBytes === 4) head.writeUInt32LE(data.length, 5);
  else head.writeBigUInt64LE(BigInt(data.length), 5);
  parts.push(head);
  let off = 0;
  blocks.forEach((size, i) => {
    const h = (size << 3) | (i === blocks.length - 1 ? 1 : 0);
    parts.push(Buffer.from([h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff]), Buffer.from(data.subarray(off, off + size)));
    off += size;
  });
  return Buffer.concat(parts);
}

async function outcome(p: Promise<Buffer>): Promise<Buffer | 'refused'> {
  try {
    return await p;
  } catch {
    return 'refused';
  }
}

test('raw frames decode without the decoder, identically to zstd-codec', async () => {
  const rand = prng(11);
  for (const n of [1, 200, 4096, 131072, 131073, 3 * 131072 + 5, 1 << 20]) {
    const data = randomBytes(rand, n);
    const frame = rawFrame(data);
    const fast = rawFrameContent(frame, n);
    assert.ok(fast, `${n} bytes: the raw path takes the writer's frame`);
    assert.ok(fast.equals(data));
    assert.ok((await __decompressFrameByCodec(frame, n)).equals(data));
    assert.ok((await decompressFrame(frame, n)).equals(data));
    // The decode worker transfers the result: it must own its whole buffer.
    assert.equal(fast.byteOffset, 0);
    assert.equal(fast.byteLength, fast.buffer.byteLength);
  }
  // Every content-size field width, several blocks, an empty block in the middle.
  const data = randomBytes(rand, 300);
  for (const fcsFlag of [1, 2, 3]) {
    const frame = handRawFrame(data, [100, 0, 150, 50], fcsFlag);
    assert.ok(rawFrameContent(frame, 300)?.equals(data), `FCS flag ${fcsFlag}`);
    assert.ok((await __decompressFrameByCodec(frame, 300)).equals(data));
  }
  const small = randomBytes(rand, 20);
  assert.ok(rawFrameContent(handRawFrame(small, [20], 0), 20)?.equals(small));
  assert.ok((await __decompressFrameByCodec(handRawFrame(small, [20], 0), 20)).equals(small));
});

test('frames that are not all raw blocks go to the decoder: stock zstd frames, compressed pages', { skip: requireTools('zstd') }, async () => {
  const { image } = mixedImage(64);
  const data = image.subarray(0, 64 * PAGE_SIZE);
  for (const args of [['-3'], ['-19'], ['--no-check', '-1'], ['-1', '--check']]) {
    const out = spawnSync('zstd', [...args, `--stream-size=${data.length}`, '-c'], { input: data, maxBuffer: 1 << 24 });
    assert.equal(out.status, 0, out.stderr.toString());
    assert.equal(rawFrameContent(out.stdout, data.length), undefined, args.join(' '));
    assert.ok((await decompressFrame(out.stdout, data.length)).equals(data), args.join(' '));
  }
  // zstd's own frame of incompressible bytes (raw blocks, but with a checksum and no single segment): decoded all the same.
  const rand = prng(3);
  const noise = randomBytes(rand, 200_000);
  const z = spawnSync('zstd', ['-3', `--stream-size=${noise.length}`, '-c'], { input: noise, maxBuffer: 1 << 24 });
  assert.equal(rawFrameContent(z.stdout, noise.length), undefined);
  assert.ok((await decompressFrame(z.stdout, noise.length)).equals(noise));
});

test('fuzz: a mutated or truncated raw frame is decoded exactly as zstd-codec does, or refused as it is', async (t) => {
  const rand = prng(2024);
  const int = (n: number): number => Math.floor(rand() * n);
  const seeds: Array<{ frame: Buffer; n: number }> = [];
  const d1 = randomBytes(rand, 300);
  seeds.push({ frame: handRawFrame(d1, [100, 0, 150, 50], 2), n: 300 });
  seeds.push({ frame: handRawFrame(d1, [300], 1), n: 300 });
  seeds.push({ frame: handRawFrame(d1.subarray(0, 40), [10, 30], 0), n: 40 });
  const d2 = randomBytes(rand, 131072 + 4096);
  seeds.push({ frame: rawFrame(d2), n: d2.length });
  let fast = 0;
  let agreedOk = 0;
  let refused = 0;
  const rounds = 3000;
  for (let r = 0; r < rounds; r++) {
    const { frame, n } = seeds[int(seeds.length)]!;
    let m = Buffer.from(frame);
    const kind = int(6);
    if (kind === 0) m = m.subarray(0, int(m.length)); // truncated
    else if (kind === 1) m = Buffer.concat([m, randomBytes(rand, 1 + int(8))]); // trailing bytes
    else {
      // 1-3 byte changes, mostly in the header and the first block headers where they matter
      for (let k = 0; k <= int(3); k++) {
        const at = rand() < 0.8 ? int(Math.min(m.length, 24)) : int(m.length);
        if (kind === 2) m[at] = int(256);
        else m[at]! ^= 1 << int(8);
      }
    }
    // The size the caller expects: mostly the true one, sometimes another.
    const expected = rand() < 0.9 ? n : 1 + int(n + 10);
    const raw = rawFrameContent(m, expected);
    const ref = await outcome(__decompressFrameByCodec(m, expected));
    const got = await outcome(decompressFrame(m, expected));
    if (raw) {
      fast++;
      assert.ok(ref !== 'refused' && ref.equals(raw), `round ${r}: the raw path accepted a frame the decoder ${ref === 'refused' ? 'refuses' : 'decodes otherwise'}: ${m.subarray(0, 24).toString('hex')}`);
    }
    if (ref === 'refused') {
      refused++;
      assert.equal(got, 'refused', `round ${r}`);
    } else {
      agreedOk++;
      assert.ok(got !== 'refused' && got.equals(ref), `round ${r}`);
    }
  }
  t.diagnostic(JSON.stringify({ fast, agreedOk, refused }));
  // The run exercises both sides: frames the copy takes and frames both refuse.
  assert.ok(fast > rounds / 10 && refused > rounds / 10, JSON.stringify({ fast, agreedOk, refused }));
});
