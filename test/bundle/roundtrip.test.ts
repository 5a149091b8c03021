import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { BundleReader, BundleWriter, PAGE_SIZE, ZERO_PAGE_DIGEST } from '../../src/bundle';
import { chunked, prng, sparseImage, tempDir } from './util';

interface Layout {
  start: bigint;
  data: Buffer;
  name?: string;
}

function layoutFor(seed: number): Layout[] {
  const rand = prng(seed);
  const starts = [0n, 0x9f000n, 0xc0000000n - 0x3000n, 0x100000000n, 0x4_0000_0000n + 0x7000n, 0xffff_ffff_ffc0_0000n];
  const layout: Layout[] = [];
  for (const start of starts) {
    if (rand() < 0.3) continue;
    const pages = rand() < 0.15 ? 0 : 1 + Math.floor(rand() * 700);
    const tail = rand() < 0.3 ? 1 + Math.floor(rand() * (PAGE_SIZE - 1)) : 0;
    layout.push({ start, data: sparseImage(rand, pages, pages === 0 ? 0 : tail), name: `ram-${start.toString(16)}` });
  }
  return layout;
}

async function writeLayout(path: string, layout: Layout[], seed: number, options: { frameBytes?: number; workers?: number } = {}): Promise<void> {
  const rand = prng(seed ^ 0x5a5a);
  const w = await BundleWriter.create(path, { frameBytes: options.frameBytes ?? 64 * 1024, workers: options.workers ?? 2 });
  await w.addJsonSection('manifest', { seed, big: 0xffff_ffff_ffff_ffffn });
  for (const [i, r] of layout.entries()) {
    const stats = await w.addMemoryRange(r.start, chunked(r.data, rand), { name: r.name!, expectedLength: BigInt(r.data.length) });
    assert.equal(stats.length, BigInt(r.data.length));
    assert.equal(stats.pages, Math.ceil(r.data.length / PAGE_SIZE));
    assert.equal(stats.zeroPages + stats.dedupPages + stats.storedPages, stats.pages);
    if (i === 0) await w.addRawSection('attachment/note.txt', Buffer.from('between ranges'));
  }
  await w.finish();
}

for (const seed of [1, 2, 3, 4, 5]) {
  test(`random sparse layout ${seed} reads back byte for byte, with page digests and stats from the index`, async () => {
    const tmp = tempDir();
    try {
      const layout = layoutFor(seed);
      const path = tmp.path('rt.vmpm');
      await writeLayout(path, layout, seed, { workers: seed % 3 });
      const r = await BundleReader.open(path);
      try {
        assert.deepEqual(await r.json('manifest'), { seed, big: '0xffffffffffffffff' });
        assert.equal(r.ranges().length, layout.length);
        let pages = 0;
        for (const [i, l] of layout.entries()) {
          const info = r.ranges()[i]!;
          assert.equal(info.start, l.start);
          assert.equal(info.length, BigInt(l.data.length));
          assert.equal(info.name, l.name);
          pages += info.pages;
          if (l.data.length > 0) assert.ok((await r.read(l.start, l.data.length)).equals(l.data), `range ${l.start.toString(16)}`);
          for (let p = 0; p * PAGE_SIZE < l.data.length; p++) {
            const page = Buffer.alloc(PAGE_SIZE);
            l.data.copy(page, 0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
            const digest = r.pageDigest(l.start + BigInt(p * PAGE_SIZE) + 17n);
            assert.deepEqual(digest, createHash('sha256').update(page).digest());
          }
        }
        assert.equal(r.stats().pages, pages);
        const indexPages = [...r.pages()];
        assert.equal(indexPages.length, pages);
        for (let i = 1; i < indexPages.length; i++) assert.ok(indexPages[i - 1]!.addr < indexPages[i]!.addr);
        assert.equal(indexPages.filter((p) => p.zero).length, r.stats().zeroPages);
        assert.ok(indexPages.filter((p) => p.zero).every((p) => p.digest.equals(ZERO_PAGE_DIGEST)));
        let dataPages = 0;
        for await (const p of r.dataPages()) {
          dataPages++;
          assert.deepEqual(p.data, await r.read(p.addr, PAGE_SIZE, { zeroFill: true }));
        }
        assert.equal(dataPages, r.stats().dataPages);
        const v = await r.verify();
        assert.deepEqual(v.problems, []);
        assert.equal(v.sha256, await r.sha256());
      } finally {
        await r.close();
      }
    } finally {
      tmp.cleanup();
    }
  });
}
