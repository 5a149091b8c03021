import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { CodecError } from '../../src/bundle';
import { compressFrame, decompressFrame, frameContentSize, MAX_FRAME_INPUT } from '../../src/bundle/codec';
import { prng, randomBytes } from './util';

test('compressFrame/decompressFrame round-trip and record the content size in the frame header', async () => {
  const data = Buffer.concat([randomBytes(prng(3), 100_000), Buffer.alloc(50_000, 7)]);
  const frame = await compressFrame(data, 3);
  assert.ok(Buffer.isBuffer(frame));
  assert.equal(frameContentSize(frame), BigInt(data.length));
  assert.deepEqual(await decompressFrame(frame, data.length), data);
});

test('codec failures become CodecError: oversize input, lying or corrupt frames, bad levels', async () => {
  await assert.rejects(compressFrame(Buffer.alloc(MAX_FRAME_INPUT + 1), 3), (e: Error) => e instanceof CodecError && /refusing to compress 4194305 bytes/.test(e.message));
  await assert.rejects(compressFrame(Buffer.alloc(3 * 1024 * 1024), 9), /at level 9 \(limit 2097152\)/);
  await assert.rejects(compressFrame(Buffer.alloc(10), 0), /zstd level 0 is not supported/);
  const frame = await compressFrame(Buffer.alloc(8192, 1), 3);
  await assert.rejects(decompressFrame(frame, 4096), /frame header declares 8192 bytes of content, expected 4096/);
  await assert.rejects(decompressFrame(frame, MAX_FRAME_INPUT + 1), /refusing to decompress a frame of declared size/);
  await assert.rejects(decompressFrame(Buffer.from('definitely not zstd'), 10), /not a zstd frame: magic 0x69666564/);
  const damaged = Buffer.from(frame);
  damaged[damaged.length - 3]! ^= 0xff;
  await assert.rejects(decompressFrame(damaged, 8192), (e: Error) => e instanceof CodecError);
  // The instance still works afterwards.
  assert.deepEqual(await decompressFrame(frame, 8192), Buffer.alloc(8192, 1));
});

test('a zstd-codec heap abort is a CodecError, prints nothing on stdout, and the codec recovers', () => {
  // The public helpers refuse inputs that could abort; a child process uses the unguarded test hook
  // so its stdout can be checked for the runtime's "OOM" print.
  const codec = join(__dirname, '..', '..', 'src', 'bundle', 'codec.js');
  const script = `
    const c = require(${JSON.stringify(codec)});
    (async () => {
      await c.warmUpCodec();
      // Level 22 with 3 MiB does not fit the 16 MiB heap: the binding aborts (the guarded API would refuse it).
      let err;
      try { await c.__compressUnchecked(Buffer.alloc(3 << 20, 1), 22); } catch (e) { err = e; }
      process.stderr.write('error:' + (err && err.name) + ':' + (err && err.message) + '\\n');
      const f = await c.compressFrame(Buffer.alloc(4096, 2), 3);
      const back = await c.decompressFrame(f, 4096);
      process.stderr.write('recovered:' + back.equals(Buffer.alloc(4096, 2)) + '\\n');
    })();`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /error:CodecError:zstd compression aborted: abort\(OOM\)/);
  assert.match(r.stderr, /recovered:true/);
});
