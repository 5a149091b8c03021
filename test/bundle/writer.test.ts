import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleReader, BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { requireTools } from '../helpers/requirements';
import { prng, randomBytes, sparseImage, tempDir } from './util';

test('a new bundle is created with mode 0600 and no temporary file is left behind', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('x.vmpm');
    const w = await BundleWriter.create(path);
    const during = readdirSync(tmp.dir);
    assert.equal(during.length, 1);
    assert.match(during[0]!, /^\.x\.vmpm\.partial-[0-9a-f]+$/);
    assert.equal(statSync(join(tmp.dir, during[0]!)).mode & 0o777, 0o600);
    await w.addJsonSection('manifest', {});
    const res = await w.finish();
    assert.equal(res.path, path);
    assert.deepEqual(readdirSync(tmp.dir), ['x.vmpm']);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(res.size, statSync(path).size);
  } finally {
    tmp.cleanup();
  }
});

test('an existing file is never overwritten unless overwrite is set', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('x.vmpm');
    writeFileSync(path, 'precious evidence');
    await assert.rejects(BundleWriter.create(path), /x\.vmpm already exists \(refusing to overwrite it/);
    // A file that appears while the bundle is being written is not replaced either.
    const other = tmp.path('y.vmpm');
    const w = await BundleWriter.create(other);
    writeFileSync(other, 'appeared meanwhile');
    await assert.rejects(w.finish(), /y\.vmpm already exists \(it appeared while the bundle was being written/);
    assert.equal(readFileSync(other, 'utf8'), 'appeared meanwhile');
    assert.deepEqual(readdirSync(tmp.dir).sort(), ['x.vmpm', 'y.vmpm']);
    const w2 = await BundleWriter.create(path, { overwrite: true });
    await w2.finish();
    const r = await BundleReader.open(path);
    assert.equal(r.sections().length, 0);
    await r.close();
  } finally {
    tmp.cleanup();
  }
});

test('abort() in the middle of a memory range removes the temporary file and stops the workers', async () => {
  const tmp = tempDir();
  try {
    const w = await BundleWriter.create(tmp.path('x.vmpm'), { frameBytes: 16 * PAGE_SIZE, workers: 2 });
    const range = w.beginMemoryRange(0n);
    await range.write(randomBytes(prng(1), 100 * PAGE_SIZE));
    await w.abort();
    assert.deepEqual(readdirSync(tmp.dir), []);
    await assert.rejects(w.finish(), /cannot finish: the writer was aborted/);
    await w.abort(); // idempotent
  } finally {
    tmp.cleanup();
  }
});

test('misuse is refused with a clear message: overlapping ranges, wrong lengths, sections inside a range, bad options', async () => {
  const tmp = tempDir();
  try {
    await assert.rejects(BundleWriter.create(tmp.path('a.vmpm'), { level: 12 }), /compression level 12 is not supported \(expected 1\.\.9\)/);
    await assert.rejects(BundleWriter.create(tmp.path('a.vmpm'), { frameBytes: 5000 }), /frame size 5000 is not supported/);
    assert.deepEqual(readdirSync(tmp.dir), []);
    const w = await BundleWriter.create(tmp.path('a.vmpm'), { workers: 0 });
    assert.throws(() => w.beginMemoryRange(0x1001n), /0x1001 is not a page-aligned/);
    const open = w.beginMemoryRange(0x2000n);
    await assert.rejects(w.addJsonSection('x', {}), /cannot add section "x": a memory range is still open/);
    await open.write(Buffer.alloc(2 * PAGE_SIZE, 1));
    await open.end();
    await assert.rejects(w.addJsonSection('', {}), /section name must be 1\.\.1024 bytes/);
    await w.addJsonSection('x', { n: 1n });
    await assert.rejects(w.addJsonSection('x', {}), /section "x" was already added/);
    await assert.rejects(w.addMemoryRange(0x3000n, [Buffer.alloc(10)]), /memory range 0x3000\+0xa overlaps range 0x2000\+0x2000/);
    await assert.rejects(w.finish(), /overlaps/); // the writer is now failed: the caller must abort
    await w.abort();
    const w2 = await BundleWriter.create(tmp.path('b.vmpm'), { workers: 0 });
    await assert.rejects(w2.addMemoryRange(0n, [Buffer.alloc(100)], { expectedLength: 4096n }), /memory range at 0x0: the source gave 100 bytes, expected 4096/);
    await w2.abort();
    assert.deepEqual(readdirSync(tmp.dir), []);
  } finally {
    tmp.cleanup();
  }
});

test('a bundle written to a pipe reads back', async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('piped.vmpm');
    const child = spawn('sh', ['-c', 'cat > "$0"', path], { stdio: ['pipe', 'ignore', 'inherit'] });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const image = sparseImage(prng(7), 600);
    const w = BundleWriter.toStream(child.stdin, { frameBytes: 64 * PAGE_SIZE });
    await w.addJsonSection('manifest', { piped: true });
    await w.addMemoryRange(0x40000000n, [image]);
    const res = await w.finish();
    child.stdin.end();
    assert.equal(await closed, 0);
    assert.equal(res.path, undefined);
    assert.equal(statSync(path).size, res.size);
    const r = await BundleReader.open(path);
    assert.deepEqual(await r.read(0x40000000n, image.length), image);
    assert.equal(await r.sha256(), res.sha256);
    await r.close();
  } finally {
    tmp.cleanup();
  }
});

test('every frame decodes with the stock zstd CLI to the pages the index describes', { skip: requireTools('zstd') }, async () => {
  const tmp = tempDir();
  try {
    const path = tmp.path('z.vmpm');
    const image = sparseImage(prng(9), 400);
    const w = await BundleWriter.create(path, { frameBytes: 32 * PAGE_SIZE });
    await w.addMemoryRange(0n, [image]);
    await w.finish();
    const bytes = readFileSync(path);
    // Frame table location from the spec: trailer header, then sections (none), ranges (1 x 40), frames.
    const trailerOffset = Number(bytes.readBigUInt64LE(bytes.length - 96));
    const frames = bytes.readUInt32LE(trailerOffset + 8);
    assert.ok(frames >= 2);
    const r = await BundleReader.open(path);
    const pages = new Map<string, Buffer>();
    for await (const p of r.dataPages()) pages.set(createDigest(p.data), p.data);
    let decoded = 0;
    for (let i = 0; i < frames; i++) {
      const e = trailerOffset + 32 + 40 + i * 56;
      const off = Number(bytes.readBigUInt64LE(e));
      const len = bytes.readUInt32LE(e + 8);
      const out = execFileSync('zstd', ['-d', '-c', '-q'], { input: bytes.subarray(off, off + len) });
      assert.equal(out.length, bytes.readUInt32LE(e + 12));
      for (let k = 0; k < out.length; k += PAGE_SIZE) {
        assert.ok(pages.has(createDigest(out.subarray(k, k + PAGE_SIZE))), `frame ${i} page ${k / PAGE_SIZE}`);
        decoded++;
      }
    }
    assert.equal(decoded, r.stats().uniquePages);
    await r.close();
  } finally {
    tmp.cleanup();
  }
});

function createDigest(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

test('the writer\'s worker threads never keep the process alive after finish() or abort()', async () => {
  const bundleDir = join(__dirname, '..', '..', 'src', 'bundle');
  const tmp = tempDir();
  try {
    for (const end of ['finish', 'abort']) {
      const script = `
        const { BundleWriter } = require(${JSON.stringify(bundleDir)});
        (async () => {
          const w = await BundleWriter.create(${JSON.stringify(tmp.path(`${end}.vmpm`))}, { frameBytes: 8192, workers: 2 });
          await w.addMemoryRange(0n, [require('crypto').randomBytes(1 << 20)]);
          await w.${end}();
        })();`;
      const started = Date.now();
      const code = await new Promise<number | null>((resolve) => spawn(process.execPath, ['-e', script], { stdio: 'inherit' }).on('close', resolve));
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 10_000);
    }
    assert.deepEqual(readdirSync(tmp.dir), ['finish.vmpm']);
  } finally {
    tmp.cleanup();
  }
});
