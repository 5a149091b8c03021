import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BundleReader, BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { prng, randomBytes, tempDir } from './util';

/**
 * Two ranges with a hole between them, 8 KiB frames (2 pages each) so that short reads cross frame
 * boundaries, and a partial last page.
 */
async function fixture(tmp: ReturnType<typeof tempDir>): Promise<{ reader: BundleReader; low: Buffer; high: Buffer }> {
  const rand = prng(42);
  const low = randomBytes(rand, 9 * PAGE_SIZE);
  low.fill(0, 3 * PAGE_SIZE, 4 * PAGE_SIZE); // one zero page
  const high = randomBytes(rand, 3 * PAGE_SIZE + 1000);
  const path = tmp.path('reads.vmpm');
  const w = await BundleWriter.create(path, { frameBytes: 2 * PAGE_SIZE, workers: 1 });
  await w.addMemoryRange(0x10000n, [low]);
  await w.addMemoryRange(0x30000n, [high]);
  await w.finish();
  return { reader: await BundleReader.open(path), low, high };
}

test('reads crossing frame boundaries and page boundaries return the written bytes', async () => {
  const tmp = tempDir();
  const { reader, low, high } = await fixture(tmp);
  try {
    assert.ok(reader.stats().frames >= 4);
    for (const [off, len] of [[0, 1], [PAGE_SIZE - 3, 10], [2 * PAGE_SIZE - 1, 2], [PAGE_SIZE * 3 - 5, PAGE_SIZE + 10], [100, 8 * PAGE_SIZE], [0, low.length]] as const) {
      assert.deepEqual(await reader.read(0x10000n + BigInt(off), len), low.subarray(off, off + len), `low ${off}+${len}`);
    }
    assert.deepEqual(await reader.read(0x30000n + 3n * 4096n + 999n, 1), high.subarray(high.length - 1));
    assert.deepEqual(await reader.read(0x30000n, 0), Buffer.alloc(0));
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});

test('a read that touches a hole fails naming the first uncaptured address, unless zeroFill is asked for', async () => {
  const tmp = tempDir();
  const { reader, low, high } = await fixture(tmp);
  try {
    const lowEnd = 0x10000n + BigInt(low.length);
    await assert.rejects(reader.read(lowEnd - 4n, 8), /address 0x19000 is not captured .*next range starts at 0x30000/);
    await assert.rejects(reader.read(0x0n, 1), /address 0x0 is not captured/);
    await assert.rejects(reader.read(0x30000n + BigInt(high.length), 1), /address 0x333e8 is not captured .*no memory range covers it\)/);
    // zeroFill: the whole span from inside `low` across the hole into `high` and past its end.
    const from = lowEnd - 16n;
    const span = Number(0x30000n + BigInt(high.length) + 16n - from);
    const got = await reader.read(from, span, { zeroFill: true });
    const expected = Buffer.alloc(span);
    low.copy(expected, 0, low.length - 16);
    high.copy(expected, Number(0x30000n - from));
    assert.deepEqual(got, expected);
    assert.equal(reader.pageDigest(0x20000n), undefined);
    await assert.rejects(reader.read(0xffff_ffff_ffff_fff0n, 32), /outside the 64-bit address space/);
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});

test('dataPages honours from/to and skips zero pages', async () => {
  const tmp = tempDir();
  const { reader, low } = await fixture(tmp);
  try {
    const got: bigint[] = [];
    for await (const p of reader.dataPages({ from: 0x12000n, to: 0x16000n })) {
      got.push(p.addr);
      assert.deepEqual(p.data, low.subarray(Number(p.addr - 0x10000n), Number(p.addr - 0x10000n) + PAGE_SIZE));
    }
    assert.deepEqual(got, [0x12000n, 0x14000n, 0x15000n]);
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});
