import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { VmpmError } from '../../src/util/errors';
import { CompressPool } from '../../src/bundle/compress-pool';
import { decompressFrame } from '../../src/bundle/codec';
import { tempDir } from './util';

test('the compression pool compresses frames on worker threads and its workers end with close()', async () => {
  const pool = new CompressPool(2, 3);
  const inputs = [Buffer.alloc(8192, 1), Buffer.alloc(4096, 2), Buffer.alloc(65536, 3)];
  const copies = inputs.map((b) => Buffer.from(b));
  const frames = await Promise.all(inputs.map((b) => pool.compress(b)));
  for (const [i, f] of frames.entries()) assert.deepEqual(await decompressFrame(f.compressed, copies[i]!.length), copies[i]);
  await pool.close();
  await assert.rejects(pool.compress(Buffer.alloc(4096)), /compression pool/);
});

for (const [what, body, message] of [
  ['exits', "require('worker_threads').parentPort.on('message', () => process.exit(3));", /compression worker exited unexpectedly \(code 3\)/],
  ['throws', "require('worker_threads').parentPort.on('message', () => { throw new Error('boom'); });", /compression worker crashed: boom/],
] as const) {
  test(`a compression worker that ${what} fails its frames with a clean VmpmError, not a crash or a hang`, async () => {
    const tmp = tempDir();
    try {
      const script = tmp.path('bad-worker.js');
      writeFileSync(script, body);
      const pool = new CompressPool(1, 3, script);
      await assert.rejects(pool.compress(Buffer.alloc(4096, 1)), (err: Error) => {
        assert.ok(err instanceof VmpmError);
        assert.match(err.message, message);
        return true;
      });
      await assert.rejects(pool.compress(Buffer.alloc(4096, 1)), message); // the pool stays failed
      await pool.close();
    } finally {
      tmp.cleanup();
    }
  });
}
