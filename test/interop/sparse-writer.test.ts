/**
 * SparseWriter (interop/output.ts) writes on a thread of its own, in batches of runs: the file must
 * end up exactly as if every write had been made directly, in order — later writes over the same
 * bytes win, bytes never written stay holes (zeros), runs continue across batches, writes larger
 * than a batch and tens of thousands of tiny runs (a flattened stream's) all land.
 */
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SparseWriter } from '../../src/interop/output';
import { prng, randomBytes } from '../bundle/util';

const dir = mkdtempSync(join(tmpdir(), 'vmpm-sparse-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Makes `writes` through a SparseWriter and directly into a buffer; the file must equal the buffer. */
async function check(name: string, size: number, writes: Array<[number, Buffer]>, earlyWriteback = false): Promise<void> {
  const file = join(dir, name);
  const expected = Buffer.alloc(size);
  const fh = await open(file, 'wx+');
  try {
    const w = new SparseWriter(fh, file, { earlyWriteback });
    let total = 0;
    for (const [pos, data] of writes) {
      const view = Buffer.from(data); // a transient view, scribbled over after the call returns
      const wait = w.write(pos, view);
      if (wait) await wait;
      view.fill(0xaa);
      data.copy(expected, pos);
      total += data.length;
    }
    await w.finish();
    assert.equal(w.bytesWritten, total);
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  const got = readFileSync(file);
  assert.equal(got.length, size);
  assert.ok(got.equals(expected), `${name}: file differs from the writes made in order`);
}

it('pages at rising offsets with gaps, as an export writes them (holes stay unallocated)', async () => {
  const rand = prng(1);
  const writes: Array<[number, Buffer]> = [];
  for (let page = 0; page < 6000; page++) if (rand() < 0.6) writes.push([page * 4096, randomBytes(rand, 4096)]);
  await check('pages.bin', 6000 * 4096, writes);
  assert.ok(statSync(join(dir, 'pages.bin')).blocks * 512 < 6000 * 4096, 'the gaps are holes');
});

it('writes in any order, overlapping, larger than a batch, and 40,000 tiny ones rewriting the same bytes', async () => {
  const rand = prng(2);
  const size = 12 * 1024 * 1024;
  const writes: Array<[number, Buffer]> = [[100, randomBytes(rand, 9 * 1024 * 1024)]];
  for (let i = 0; i < 300; i++) {
    const len = 1 + Math.floor(rand() * 200_000);
    writes.push([Math.floor(rand() * (size - len)), randomBytes(rand, len)]);
  }
  for (let i = 0; i < 40_000; i++) writes.push([4096 + (i % 7) * 16, randomBytes(rand, 16)]);
  await check('any-order.bin', size, writes);
});

it('with early writeback (exports): 100 MiB in 1 MiB writes with gaps land the same, finish() waits for the sync in progress', async () => {
  const rand = prng(3);
  const chunk = randomBytes(rand, 1024 * 1024);
  const writes: Array<[number, Buffer]> = [];
  for (let i = 0; i < 110; i++) if (i % 11 !== 5) writes.push([i * 1024 * 1024 + 7, chunk.subarray(i % 13)]);
  await check('early.bin', 111 * 1024 * 1024, writes, true);
  rmSync(join(dir, 'early.bin'));
});

it('a write after finish() is refused; close() is idempotent', async () => {
  const file = join(dir, 'closed.bin');
  const fh = await open(file, 'wx+');
  try {
    const w = new SparseWriter(fh, file);
    await w.write(0, Buffer.alloc(10, 1));
    await w.finish();
    await w.close();
    assert.throws(() => w.write(0, Buffer.alloc(10, 2)));
  } finally {
    await fh.close();
  }
});
