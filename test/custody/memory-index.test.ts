import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { BundleReader, BundleWriter, encodeMemoryIndex, SLIM_SECTION } from '../../src/bundle';
import { MEMORY_INDEX_MAGIC, plainMemoryIndex } from '../../src/bundle/memory-index';
import { parseFooter, parseHeader, parseTrailer } from '../../src/bundle/structure';
import { slimBundle } from '../../src/custody';
import { buildBundle, PC_RANGES, tempDir } from '../../bench/lib/build-bundle';
import { runCli } from '../helpers/cli';
import { forgeSections } from '../../bench/lib/forge';

/**
 * The compressed memory index of slim bundles (docs/bundle-format.md "Slim bundles"): written by
 * `vmpm slim`, smaller than the plain form, read back to the same tables; slim bundles with the
 * plain form (what vmpm slim wrote before) still read; a lying frame table is refused in one line.
 */
const t = tempDir('vmpm-memindex-');
const full = t.path('full.vmpm');
// 15 MiB of distinct pages (runs of consecutive slots), zero pages, and a few dedup'd patches.
const ranges = PC_RANGES.map((r) => (r.name === 'pc.ram@high' ? { ...r, unique: true } : r));
const patches = [0x1000n, 0x3000n, 0x5000n].map((addr) => ({ addr, bytes: Buffer.alloc(4096, 0x5a) }));
before(async () => buildBundle(full, { ranges, patches }));
after(() => t.cleanup());

/** The memory-index section's payload as stored. */
function indexPayload(path: string): Buffer {
  const buf = readFileSync(path);
  const header = parseHeader(path, buf.subarray(0, 32), buf.length);
  const footer = parseFooter(path, buf.subarray(buf.length - 96), buf.length, header);
  const T = Number(footer.trailerOffset);
  const s = parseTrailer(path, buf.subarray(T, T + Number(footer.trailerLength)), 32, T);
  const e = s.unknownSections.find((x) => x.name === 'memory-index')!;
  return buf.subarray(e.offset, e.offset + e.length);
}

async function pagesOf(path: string): Promise<string[]> {
  const r = await BundleReader.open(path);
  try {
    return [...r.pages()].map((p) => `${p.addr.toString(16)} ${p.zero ? 'zero' : p.digest.toString('hex')}`);
  } finally {
    await r.close();
  }
}

async function diffCounts(a: string, b: string): Promise<{ changedPages: number; addedPages: number; removedPages: number; unchangedPages: number }> {
  const d = await runCli(['diff', a, b, '--json']);
  assert.equal(d.code, 0, d.stderr);
  return (JSON.parse(d.stdout) as { memory: { counts: { changedPages: number; addedPages: number; removedPages: number; unchangedPages: number } } }).memory.counts;
}

test('vmpm slim writes the compressed memory index; it reads back to the full bundle\'s tables', async () => {
  const slim = t.path('slim.vmpm');
  await slimBundle(full, slim);
  const payload = indexPayload(slim);
  assert.ok(payload.subarray(0, 8).equals(MEMORY_INDEX_MAGIC), 'compressed form');
  const src = await BundleReader.open(full);
  const plain = encodeMemoryIndex(src.memoryTables());
  const stats = src.stats();
  await src.close();
  assert.ok((await plainMemoryIndex('slim', payload)).equals(plain), 'decodes to the plain form byte for byte');
  // The page index (byte planes) compresses; the digests do not: less than plain minus most of the index.
  assert.ok(payload.length < plain.length - stats.pages * 3, `${payload.length} bytes compressed vs ${plain.length} plain`);
  assert.deepEqual(await pagesOf(slim), await pagesOf(full));
  const counts = await diffCounts(full, slim);
  assert.equal(counts.changedPages, 0);
  assert.equal(counts.addedPages + counts.removedPages, 0);
  assert.ok(counts.unchangedPages > 3840);
});

test('a slim bundle with the plain (uncompressed) memory index still reads and diffs', async () => {
  const old = t.path('slim-plain.vmpm');
  const src = await BundleReader.open(full);
  const w = await BundleWriter.create(old, { digestsOnly: true, workers: 0 });
  try {
    for (const s of src.sections()) await w.copySection(s.name, s.type, await src.raw(s.name));
    await w.addMemoryIndex(encodeMemoryIndex(src.memoryTables()));
    await w.addJsonSection(SLIM_SECTION, { by: 'test@host', vmpmVersion: '0.0.0', at: '2026-01-01T00:00:00Z', source: { file: 'full.vmpm', sha256: '0'.repeat(64), size: src.fileSize }, omitted: ['memory contents'], omittedSections: [], pages: src.stats().pages, dataPages: src.stats().dataPages });
    await w.finish();
  } finally {
    await src.close();
  }
  assert.equal(indexPayload(old).readUInt32LE(0), 0, 'plain form: S = 0');
  assert.deepEqual(await pagesOf(old), await pagesOf(full));
  assert.equal((await diffCounts(full, old)).changedPages, 0);
  const v = await runCli(['verify', old]);
  assert.equal(v.code, 0, v.stdout);
});

test('a compressed memory index that lies is refused in one line, even with every digest recomputed', async () => {
  const slim = t.path('slim2.vmpm');
  await slimBundle(full, slim);
  const good = indexPayload(slim);
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['plain length', (b) => b.writeBigUInt64LE(b.readBigUInt64LE(8) + 1n, 8), /frames hold \d+ plain bytes, the header says \d+/],
    ['frame count', (b) => b.writeUInt32LE(0x10000000, 16), /frames do not fit/],
    ['frame length', (b) => b.writeUInt32LE(b.readUInt32LE(24) + 1, 24), /frame table adds up to/],
    ['frame magic', (b) => (b[24 + 8 * b.readUInt32LE(16)]! ^= 0xff), /frame 0: not a zstd frame/],
  ];
  for (const [what, damage, message] of cases) {
    const bad = Buffer.from(good);
    damage(bad);
    const forged = t.path(`forged-${what.replace(' ', '-')}.vmpm`);
    writeFileSync(forged, forgeSections(readFileSync(slim), { 'memory-index': bad }));
    const r = await runCli(['info', forged]);
    assert.equal(r.code, 1, what);
    assert.match(r.stderr, /^vmpm: .*compressed memory index: .*\n$/, what);
    assert.match(r.stderr, message, what);
  }
});
