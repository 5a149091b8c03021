import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { BundleFormatError, BundleReader, BundleWriter, PAGE_SIZE } from '../../src/bundle';
import { runCli } from '../helpers/cli';
import { tempDir } from './util';

/** A small bundle (~1.5 KB) with every kind of part: JSON and raw sections, zero/dup/stored pages, two frames. */
async function smallBundle(path: string): Promise<void> {
  const a = Buffer.alloc(PAGE_SIZE, 'guest page A ');
  const b = Buffer.alloc(PAGE_SIZE, 'page B. ');
  const w = await BundleWriter.create(path, { frameBytes: PAGE_SIZE, workers: 1 });
  await w.addJsonSection('manifest', { origin: 'synthetic', n: 1 });
  await w.addMemoryRange(0x1000n, [Buffer.concat([a, Buffer.alloc(PAGE_SIZE), a, b])], { name: 'ram' });
  await w.addRawSection('attachment/note.txt', Buffer.from('note'));
  await w.finish();
}

test('every single-byte corruption of a small bundle is detected by verify (exhaustive over all offsets)', async () => {
  const tmp = tempDir();
  try {
    const good = tmp.path('good.vmpm');
    await smallBundle(good);
    const bytes = readFileSync(good);
    assert.ok(bytes.length < 4096, `fixture is ${bytes.length} bytes`);
    const ok = await BundleReader.verifyFile(good);
    assert.deepEqual(ok.problems, []);
    await ok.reader?.close();
    const bad = tmp.path('bad.vmpm');
    const undetected: string[] = [];
    for (let off = 0; off < bytes.length; off++) {
      for (const mask of [0x01, 0x80]) {
        const copy = Buffer.from(bytes);
        copy[off]! ^= mask;
        writeFileSync(bad, copy);
        const result = await BundleReader.verifyFile(bad);
        await result.reader?.close();
        if (result.ok || result.problems.length === 0) undetected.push(`offset ${off} ^ 0x${mask.toString(16)}`);
        assert.equal(result.sha256, createHash('sha256').update(copy).digest('hex'));
      }
    }
    assert.deepEqual(undetected, []);
  } finally {
    tmp.cleanup();
  }
});

test('truncation at every structural boundary gives a precise error', async () => {
  const tmp = tempDir();
  try {
    const good = tmp.path('good.vmpm');
    await smallBundle(good);
    const bytes = readFileSync(good);
    const r = await BundleReader.open(good);
    const boundaries = new Set<number>([0, 1, 8, 32, bytes.length - 96, bytes.length - 8, bytes.length - 1]);
    for (const s of r.sections()) [s.offset, s.offset + s.length].forEach((x) => boundaries.add(x));
    const trailerOffset = bytes.readBigUInt64LE(bytes.length - 96);
    boundaries.add(Number(trailerOffset));
    for (let t = Number(trailerOffset); t < bytes.length - 96; t += 32) boundaries.add(t); // through the trailer tables
    await r.close();
    const cut = tmp.path('cut.vmpm');
    for (const size of [...boundaries].sort((x, y) => x - y)) {
      writeFileSync(cut, bytes.subarray(0, size));
      await assert.rejects(BundleReader.open(cut), (err: Error) => {
        assert.ok(err instanceof BundleFormatError, `size ${size}: ${String(err)}`);
        if (size < 128) assert.match(err.message, new RegExp(`file is ${size} bytes, too short to be a bundle`));
        else assert.match(err.message, new RegExp(`no bundle footer at offset ${size - 96} .*truncated or was not finished`));
        return true;
      });
    }
  } finally {
    tmp.cleanup();
  }
});

test('vmpm verify prints the sha256sum of a good bundle and exits 0; a corrupted one lists the problem and exits 1', async () => {
  const tmp = tempDir();
  try {
    const good = tmp.path('good.vmpm');
    await smallBundle(good);
    const bytes = readFileSync(good);
    const sum = createHash('sha256').update(bytes).digest('hex');
    const r1 = await runCli(['verify', good]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, new RegExp(`sha256 +${sum}`));
    assert.match(r1.stdout, /result +OK/);
    const j = await runCli(['verify', '--json', good]);
    assert.equal(j.code, 0);
    const parsed = JSON.parse(j.stdout) as { ok: boolean; sha256: string; sections: Array<{ name: string }>; problems: string[] };
    assert.equal(parsed.ok, true);
    assert.equal(parsed.sha256, sum);
    assert.deepEqual(parsed.sections.map((s) => s.name), ['manifest', 'attachment/note.txt']);

    const bad = tmp.path('bad.vmpm');
    const copy = Buffer.from(bytes);
    const manifestAt = 32; // the first section starts right after the header
    copy[manifestAt + 2]! ^= 0x20;
    writeFileSync(bad, copy);
    const r2 = await runCli(['verify', bad]);
    assert.equal(r2.code, 1);
    assert.match(r2.stdout, /result +FAILED/);
    assert.match(r2.stdout, /section "manifest" \(offset 32, \d+ bytes\): SHA-256 mismatch/);
    const j2 = JSON.parse((await runCli(['verify', '--json', bad])).stdout) as { ok: boolean; problems: string[] };
    assert.equal(j2.ok, false);
    assert.ok(j2.problems.length >= 2);

    writeFileSync(bad, bytes.subarray(0, bytes.length - 10));
    const r3 = await runCli(['verify', bad]);
    assert.equal(r3.code, 1);
    assert.match(r3.stdout, /truncated or was not finished/);
    const r4 = await runCli(['verify', tmp.path('missing.vmpm')]);
    assert.equal(r4.code, 1);
    assert.match(r4.stderr, /cannot open bundle .*missing\.vmpm/);
    assert.doesNotMatch(r4.stderr, /\n\s+at /);
  } finally {
    tmp.cleanup();
  }
});
