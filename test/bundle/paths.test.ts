import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { BundleReader, BundleWriter } from '../../src/bundle';
import { VmpmError } from '../../src/util/errors';
import { tempDir } from './util';

/** The error a promise rejects with, asserted to be a one-line VmpmError. */
async function oneLineError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof VmpmError, `expected a VmpmError, got ${String(err)}`);
    assert.doesNotMatch(err.message, /\n/);
    return err.message;
  }
  assert.fail('expected a rejection');
}

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

test('opening a missing bundle says "no such file or directory" once, naming the path once and no errno jargon', async () => {
  const tmp = tempDir();
  try {
    for (const path of [tmp.path('missing.vmpm'), tmp.path('no-dir/missing.vmpm')]) {
      const message = await oneLineError(BundleReader.open(path));
      assert.equal(message, `cannot open bundle ${path}: no such file or directory`);
      assert.equal(occurrences(message, path), 1);
    }
  } finally {
    tmp.cleanup();
  }
});

test('opening a directory or a FIFO as a bundle says what it is, and a FIFO does not hang waiting for a writer', { timeout: 10_000 }, async () => {
  const tmp = tempDir();
  try {
    const dir = tmp.path('a-dir.vmpm');
    mkdirSync(dir);
    assert.equal(await oneLineError(BundleReader.open(dir)), `cannot open bundle ${dir}: it is a directory, not a bundle file`);
    const fifo = tmp.path('fifo.vmpm');
    execFileSync('mkfifo', [fifo]);
    // Without O_NONBLOCK this open would block until some process opened the FIFO for writing.
    assert.equal(await oneLineError(BundleReader.open(fifo)), `cannot open bundle ${fifo}: not a regular file (a bundle must be a seekable file)`);
    const verified = BundleReader.verifyFile(dir);
    assert.match(await oneLineError(verified), /it is a directory, not a bundle file/);
  } finally {
    tmp.cleanup();
  }
});

test('overwrite onto a directory fails at create(), before anything is written, and leaves no temporary file', async () => {
  const tmp = tempDir();
  try {
    const dir = tmp.path('out.vmpm');
    mkdirSync(dir);
    assert.equal(
      await oneLineError(BundleWriter.create(dir, { overwrite: true })),
      `cannot write bundle ${dir}: it is a directory (only a regular file can be overwritten)`,
    );
    assert.match(await oneLineError(BundleWriter.create(dir)), /out\.vmpm already exists \(refusing to overwrite it/);
    assert.deepEqual(readdirSync(tmp.dir), ['out.vmpm']);
  } finally {
    tmp.cleanup();
  }
});

test('a dangling symlink at the target counts as existing (refused at create, not at finish); with overwrite it is replaced', async () => {
  const tmp = tempDir();
  try {
    const link = tmp.path('link.vmpm');
    symlinkSync(tmp.path('nowhere'), link);
    assert.match(await oneLineError(BundleWriter.create(link)), /link\.vmpm already exists/);
    const w = await BundleWriter.create(link, { overwrite: true });
    await w.addJsonSection('manifest', { ok: true });
    await w.finish();
    const r = await BundleReader.open(link);
    assert.deepEqual(await r.json('manifest'), { ok: true });
    await r.close();
    writeFileSync(tmp.path('plain.vmpm'), 'old');
    const w2 = await BundleWriter.create(tmp.path('plain.vmpm'), { overwrite: true });
    await w2.finish();
  } finally {
    tmp.cleanup();
  }
});
