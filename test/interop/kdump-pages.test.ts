/**
 * The kdump exporter's stored page forms (decode-worker.ts deflatePages): zlib where it shrinks the
 * page, the page itself otherwise, and pages that look incompressible (random bytes) stored as they
 * are without being deflated. Every stored form must give the page back.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { deflatePages } from '../../src/bundle/decode-worker';
import { prng, randomBytes } from '../bundle/util';

it('random pages are stored raw, text and zero pages as zlib, and each stored form is the page', () => {
  const random = randomBytes(prng(5), 4096);
  const text = Buffer.alloc(4096);
  for (let at = 0; at < 4096; ) at += text.write(`line ${at}: the quick brown fox jumps over the lazy dog\n`, at);
  const zero = Buffer.alloc(4096);
  const data = Buffer.concat([random, text, zero, random]);
  const d = deflatePages(data);
  assert.deepEqual([...d.zlib], [0, 1, 1, 0]);
  for (let k = 0; k < 4; k++) {
    const stored = Buffer.from(d.packed.subarray(k === 0 ? 0 : d.ends[k - 1]!, d.ends[k]!));
    const page = data.subarray(k * 4096, (k + 1) * 4096);
    assert.deepEqual(d.zlib[k] ? inflateSync(stored) : stored, page, `page ${k}`);
    if (d.zlib[k]) assert.ok(stored.length < 4096);
  }
});
