/**
 * BundleReader.streamPages: the parallel, read-ahead page walk the exporters use. Same pages in the
 * same order as the random-access path, bounded memory even when dedup points pages back at frames
 * long passed, and a corrupt frame reported as one line naming the frame and its offset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import { BundleFormatError, BundleReader, BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { prng, randomBytes, sparseImage, tempDir } from './util';

const FRAME = 4 * PAGE_SIZE;

/** Two ranges of mixed pages (zero, repeated, random) in 16 KiB frames, and a range made only of repeats of the first pages. */
async function fixture(tmp: ReturnType<typeof tempDir>): Promise<{ path: string; ranges: Array<{ start: bigint; data: Buffer }> }> {
  const rand = prng(7);
  const a = sparseImage(rand, 300);
  const b = sparseImage(rand, 120, 1000);
  // Pages that repeat pages of `a` (dedup points them at its early frames), interleaved with new ones.
  const c = Buffer.alloc(64 * PAGE_SIZE);
  for (let p = 0; p < 64; p++) (p % 2 === 0 ? a.subarray((p % 20) * PAGE_SIZE, (p % 20 + 1) * PAGE_SIZE) : randomBytes(rand, PAGE_SIZE)).copy(c, p * PAGE_SIZE);
  const ranges = [
    { start: 0x100000n, data: a },
    { start: 0x10000n, data: b },
    { start: 0x400000n, data: c },
  ];
  const path = tmp.path('stream.vmpm');
  const w = await BundleWriter.create(path, { frameBytes: FRAME, workers: 1 });
  for (const r of ranges) await w.addMemoryRange(r.start, [r.data]);
  await w.finish();
  return { path, ranges };
}

/** What the stream must yield: every page of every range in address order, zero pages as null. */
function expected(ranges: Array<{ start: bigint; data: Buffer }>): Array<{ addr: bigint; data: Buffer | null }> {
  const out: Array<{ addr: bigint; data: Buffer | null }> = [];
  for (const r of [...ranges].sort((x, y) => (x.start < y.start ? -1 : 1))) {
    for (let off = 0; off < r.data.length; off += PAGE_SIZE) {
      const page = Buffer.alloc(PAGE_SIZE);
      r.data.copy(page, 0, off, Math.min(off + PAGE_SIZE, r.data.length));
      out.push({ addr: r.start + BigInt(off), data: page.equals(Buffer.alloc(PAGE_SIZE)) ? null : page });
    }
  }
  return out;
}

async function collect(reader: BundleReader, options: Parameters<BundleReader['streamPages']>[1]): Promise<{ pages: Array<{ addr: bigint; data: Buffer | null }>; stats: Awaited<ReturnType<BundleReader['streamPages']>> }> {
  const pages: Array<{ addr: bigint; data: Buffer | null }> = [];
  // The page is a view valid during the callback only: copy it.
  const stats = await reader.streamPages((addr, page) => void pages.push({ addr, data: page ? Buffer.from(page.data) : null }), options);
  return { pages, stats };
}

test('streamPages yields every page in address order, identical to the written memory, with any read-ahead and retention', async () => {
  const tmp = tempDir();
  const { path, ranges } = await fixture(tmp);
  const reader = await BundleReader.open(path);
  try {
    const want = expected(ranges);
    assert.ok(reader.stats().frames > 20, 'the fixture spans many frames');
    for (const options of [{}, { workers: 1, ahead: 1, retainBytes: 0 }, { workers: 3, ahead: 8 }, { workers: 2, checkPages: true }, { deflate: true }]) {
      const { pages, stats } = await collect(reader, options);
      assert.equal(pages.length, want.length, JSON.stringify(options));
      pages.forEach((p, i) => {
        assert.equal(p.addr, want[i]!.addr, `page ${i} address (${JSON.stringify(options)})`);
        assert.deepEqual(p.data, want[i]!.data, `page ${i} at 0x${p.addr.toString(16)} (${JSON.stringify(options)})`);
      });
      assert.equal(stats.dataPages + stats.zeroPages, want.length);
      assert.equal(stats.zeroPages, want.filter((p) => p.data === null).length);
    }
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});

test('deflated pages inflate back to the page (kdump export)', async () => {
  const tmp = tempDir();
  const { path } = await fixture(tmp);
  const reader = await BundleReader.open(path);
  const { inflateSync } = await import('node:zlib');
  try {
    let zlib = 0;
    await reader.streamPages((_addr, page) => {
      if (!page) return;
      const s = page.stored!;
      if (s.zlib) zlib++;
      assert.deepEqual(s.zlib ? inflateSync(s.bytes) : s.bytes, page.data);
    }, { deflate: true });
    assert.ok(zlib > 0, 'some pages compress');
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});

test('memory stays bounded: read-ahead and retention caps hold, and frames dropped early are decoded again, not kept', async () => {
  const tmp = tempDir();
  const { path, ranges } = await fixture(tmp);
  const reader = await BundleReader.open(path);
  try {
    const frames = reader.stats().frames;
    const tight = await collect(reader, { workers: 2, ahead: 2, retainBytes: FRAME });
    // In flight or ahead (2), the current frame, and one retained frame, at most.
    assert.ok(tight.stats.maxResidentBytes <= 4 * FRAME, `resident ${tight.stats.maxResidentBytes} bytes with a ${FRAME}-byte retention cap`);
    // Range c refers back to early frames of range a: with one frame retained some are decoded twice.
    assert.ok(tight.stats.decodes > frames, `${tight.stats.decodes} decodes of ${frames} frames`);
    assert.deepEqual(tight.pages.map((p) => p.data), expected(ranges).map((p) => p.data));
    const roomy = await collect(reader, { workers: 2, ahead: 2 });
    assert.equal(roomy.stats.decodes, frames, 'with room to retain them, every frame is decoded exactly once');
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});

test('a corrupt frame fails the stream with one line naming the frame and its offset, after the pages before it', async () => {
  const tmp = tempDir();
  const { path } = await fixture(tmp);
  let reader = await BundleReader.open(path);
  // The 6th frame in address order: find where its stored bytes are from the trailer's frame table.
  const frames = (reader as unknown as { store: { s: { frames: Array<{ offset: number; compressedLength: number; firstSlot: number }> } } }).store.s.frames;
  const victim = 5;
  const f = frames[victim]!;
  await reader.close();
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, f.offset + Math.floor(f.compressedLength / 2));
  byte[0] = byte[0]! ^ 0xff;
  writeSync(fd, byte, 0, 1, f.offset + Math.floor(f.compressedLength / 2));
  closeSync(fd);
  reader = await BundleReader.open(path);
  try {
    let before = 0;
    const err = await reader
      .streamPages(
        () => {
          before++;
        },
        { workers: 2, ahead: 6 },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof BundleFormatError, `a BundleFormatError, got ${String(err)}`);
    const msg = err.message;
    assert.equal(msg.split('\n').length, 1, msg);
    assert.match(msg, new RegExp(`frame ${victim} \\(offset ${f.offset}, ${f.compressedLength} bytes\\) SHA-256 mismatch: index says [0-9a-f]{64}, data hashes to [0-9a-f]{64}$`));
    assert.ok(msg.startsWith(path), msg);
    assert.ok(before > 0, 'pages before the bad frame were handed out');
    // The walk stopped at the bad frame: no page after its first use was handed out.
    assert.ok(before < reader.stats().dataPages + reader.stats().zeroPages);
  } finally {
    await reader.close();
    tmp.cleanup();
  }
});
