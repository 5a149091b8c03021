/**
 * The two compression paths (codec.ts): the portable one (zstd-codec) and the optional native one.
 * Each writes bundles that the reader (whose only decoder is zstd-codec) reads and verifies, that hold
 * the same pages, and whose every frame the stock `zstd -d` decodes. The native path is forced with
 * VMPM_CODEC=native; where the optional package is not installed that test skips (and fails under CI,
 * which runs `npm ci` and so has it on linux-x64).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { __resetCodecChoice, compressionCodec, decompressFrame, frameContentSize, withContentSize } from '../../src/bundle/codec';
import { CodecError } from '../../src/bundle/errors';
import { NATIVE_PACKAGE, nativeZstd } from '../../src/bundle/native-zstd';
import { requireTools } from '../helpers/requirements';
import { assertReadsBack, framesOf, MIXED_RANGES, mixedImage, tempDir } from './util';

function nativeMissing(): false | string {
  const n = nativeZstd();
  if (!('error' in n)) return false;
  const message = `needs the optional dependency ${NATIVE_PACKAGE} (npm install): ${n.error}`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
  return message;
}

/** Runs `fn` with VMPM_CODEC set (the writer's workers inherit the environment when they start). */
async function withCodec<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.VMPM_CODEC;
  if (value === undefined) delete process.env.VMPM_CODEC;
  else process.env.VMPM_CODEC = value;
  __resetCodecChoice();
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.VMPM_CODEC;
    else process.env.VMPM_CODEC = saved;
    __resetCodecChoice();
  }
}

/** A zstd frame without a content size, as a streaming compressor writes it: one raw block. */
function frameWithoutContentSize(data: Buffer): Buffer {
  const header = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3]); // descriptor 0; window 1 MiB
  const block = Buffer.alloc(3);
  block.writeUIntLE((data.length << 3) | 1, 0, 3); // raw block, last
  return Buffer.concat([header, block, data]);
}

test('withContentSize adds a 4-byte content size that zstd-codec and zstd -d accept; a present one is checked', { skip: requireTools('zstd') }, async () => {
  const data = Buffer.from('vmpm '.repeat(1000));
  const bare = frameWithoutContentSize(data);
  assert.equal(frameContentSize(bare), undefined);
  const framed = withContentSize(bare, data.length);
  assert.equal(framed.length, bare.length + 4);
  assert.equal(frameContentSize(framed), BigInt(data.length));
  assert.deepEqual(await decompressFrame(framed, data.length), data);
  const cli = spawnSync('zstd', ['-d', '-c'], { input: framed });
  assert.equal(cli.status, 0, cli.stderr.toString());
  assert.ok(cli.stdout.equals(data));
  assert.equal(withContentSize(framed, data.length), framed, 'a frame with the field is returned as it is');
  assert.throws(() => withContentSize(framed, data.length + 1), (e: Error) => e instanceof CodecError && /declares 5000 bytes of content, expected 5001/.test(e.message));
  assert.throws(() => withContentSize(Buffer.from('not a zstd frame'), 16), CodecError);
});

test('VMPM_CODEC: portable forces zstd-codec; an unknown value fails BundleWriter.create with one clear error', async () => {
  await withCodec('portable', async () => assert.equal(compressionCodec().path, 'portable'));
  await withCodec('fast', async () => {
    const tmp = tempDir();
    await assert.rejects(BundleWriter.create(tmp.path('x.vmpm')), /VMPM_CODEC=fast is not a codec \(expected portable, native or auto\)/);
    tmp.cleanup();
  });
});

test('auto uses the native codec when it loads, else the portable one', async () => {
  const n = nativeZstd();
  await withCodec(undefined, async () => assert.equal(compressionCodec().path, 'error' in n ? 'portable' : 'native'));
});

test('bundles from the native and the portable path hold the same pages, read and verify, and zstd -d decodes every frame', { skip: requireTools('zstd') || nativeMissing() }, async () => {
  const tmp = tempDir();
  const { image } = mixedImage(203);
  const frameSets: Record<string, Buffer[]> = {};
  for (const codec of ['portable', 'native']) {
    for (const workers of [0, 2]) {
      const path = join(tmp.dir, `${codec}-${workers}.vmpm`);
      await withCodec(codec, async () => {
        const w = await BundleWriter.create(path, { frameBytes: 4 * PAGE_SIZE, workers });
        assert.equal(w.codec.path, codec);
        for (const [start, data] of MIXED_RANGES(image)) await w.addMemoryRange(start, [data]);
        await w.finish();
      });
      // Read with the other setting in force: reading never depends on how the bundle was written.
      await withCodec(codec === 'native' ? 'portable' : 'native', () => assertReadsBack(path, MIXED_RANGES(image)));
      const frames = framesOf(path);
      for (const f of frames) {
        assert.equal(frameContentSize(f.bytes), BigInt(f.slotCount * PAGE_SIZE), 'every frame records its content size');
        const out = spawnSync('zstd', ['-d', '-c'], { input: f.bytes, maxBuffer: 1 << 24 });
        assert.equal(out.status, 0, out.stderr.toString());
        assert.equal(out.stdout.length, f.slotCount * PAGE_SIZE);
      }
      frameSets[`${codec}-${workers}`] = frames.map((f) => f.bytes);
    }
  }
  // Each path gives the same frames with or without workers, and the two paths really differ
  // (different zstd versions), so both were exercised.
  assert.deepEqual(frameSets['native-0'], frameSets['native-2']);
  assert.deepEqual(frameSets['portable-0'], frameSets['portable-2']);
  assert.notDeepEqual(frameSets['native-0'], frameSets['portable-0']);
  tmp.cleanup();
});
