import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader, BundleWriter } from '../../src/bundle';
import { streamSection } from '../../src/analysis';
import { runCli, VMPM_BIN } from '../helpers/cli';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');

/** A bundle with one JSON section, a text attachment and a binary raw section, all with known bytes. */
async function bundleWithSections(dir: string): Promise<{ path: string; serial: string; binary: Buffer }> {
  const path = join(dir, 'sections.vmpm');
  const serial = 'Kernel panic - not syncing: Fatal exception\r\n---[ end trace ]---\n';
  const binary = Buffer.from([0x05, 0x00, 0x00, 0x00, 0xff, 0x00, 0x7f, 0x80]);
  const w = await BundleWriter.create(path);
  await w.addJsonSection('manifest', { label: 'sections test', big: 0xffffffff80000000n });
  await w.addRawSection('attachment/serial.log', Buffer.from(serial, 'utf8'));
  await w.addRawSection('elf-notes', binary);
  await w.finish();
  return { path, serial, binary };
}

test('vmpm section FILE lists every section with its type, size and SHA-256; --json gives the same as data', async () => {
  const list = await runCli(['section', SAMPLE, '--json']);
  assert.equal(list.code, 0, list.stderr);
  const { sections } = JSON.parse(list.stdout) as { sections: Array<{ name: string; type: string; length: number; sha256: string }> };
  const names = sections.map((s) => s.name);
  for (const n of ['manifest', 'cpus', 'memmap', 'errors', 'events', 'qmp-transcript', 'elf-notes']) assert.ok(names.includes(n), n);
  assert.ok(sections.every((s) => /^[0-9a-f]{64}$/.test(s.sha256) && s.length > 0));
  const table = await runCli(['section', SAMPLE]);
  assert.equal(table.code, 0);
  for (const s of sections) assert.match(table.stdout, new RegExp(`${s.name}.*${s.sha256}`));
});

test('vmpm section FILE NAME writes a text attachment verbatim, a JSON section pretty-printed, a binary one to -o only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-section-'));
  try {
    const { path, serial, binary } = await bundleWithSections(dir);
    const text = await runCli(['section', path, 'attachment/serial.log']);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, serial);

    const json = await runCli(['section', path, 'manifest']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { label: 'sections test', big: '0xffffffff80000000' });

    const out = join(dir, 'notes.bin');
    const raw = await runCli(['section', path, 'elf-notes', '-o', out]);
    assert.equal(raw.code, 0, raw.stderr);
    assert.ok(readFileSync(out).equals(binary));
    // An existing -o file is never overwritten without --force.
    writeFileSync(out, 'keep me');
    const again = await runCli(['section', path, 'elf-notes', '-o', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists \(use --force/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    assert.equal((await runCli(['section', path, 'elf-notes', '-o', out, '--force'])).code, 0);
    assert.ok(readFileSync(out).equals(binary));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vmpm section with an unknown name says which sections exist; -o without a name is a usage error', async () => {
  const r = await runCli(['section', SAMPLE, 'vmcoreinfo']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vmpm: .* has no section "vmcoreinfo" \(it has: .*manifest.*\)\n$/);
  const u = await runCli(['section', SAMPLE, '-o', join(tmpdir(), 'never-written')]);
  assert.equal(u.code, 2);
});

test('vmpm section on a damaged section fails with one line instead of printing unverified bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-section-'));
  try {
    const { path, serial } = await bundleWithSections(dir);
    const bytes = readFileSync(path);
    const at = bytes.indexOf(Buffer.from('Fatal exception'));
    assert.ok(at > 0);
    bytes[at] ^= 0x20;
    writeFileSync(path, bytes);
    const r = await runCli(['section', path, 'attachment/serial.log']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);
    assert.ok(!r.stdout.includes(serial.slice(0, 20)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vmpm section streams a 96 MiB section in bounded memory, to -o and to a pipe, and still calls it text', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-section-'));
  try {
    // One ASCII byte, then two-byte UTF-8 characters: every 4 MiB piece boundary splits one, so the
    // text check must carry state across pieces.
    const body = Buffer.from(`x${'é'.repeat(48 << 20)}`, 'utf8');
    const digest = createHash('sha256').update(body).digest('hex');
    const path = join(dir, 'big.vmpm');
    const w = await BundleWriter.create(path);
    await w.addJsonSection('manifest', { label: 'big section' });
    await w.addRawSection('attachment/big.log', body);
    await w.finish();

    const out = join(dir, 'big.log');
    const r = await runCli(['section', path, 'attachment/big.log', '-o', out], { peakRss: true, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), digest);
    // Loading it whole took about 4x the section (bytes, a latin1 and a UTF-8 copy for the text check).
    if (r.peakKb !== undefined) assert.ok(r.peakKb < 160 * 1024, `peak RSS ${r.peakKb} KiB for a ${body.length}-byte section`);

    // To a pipe (stdout not a TTY): the same bytes, the same bound. A TTY would get them too: it is text.
    const piped = spawnSync('bash', ['-c', `/usr/bin/time -f %M -o '${dir}/rss' '${process.execPath}' '${VMPM_BIN}' section '${path}' attachment/big.log | sha256sum`], { encoding: 'utf8' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(piped.stdout.split(' ')[0], digest);
    if (existsSync(join(dir, 'rss'))) {
      const kb = Number(readFileSync(join(dir, 'rss'), 'utf8').trim().split('\n').pop());
      assert.ok(kb < 160 * 1024, `peak RSS ${kb} KiB writing to a pipe`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the streamed text check: strict UTF-8 and no control characters, whatever the piece boundaries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-section-'));
  try {
    const cases: Array<[string, Buffer, boolean]> = [
      ['ascii', Buffer.from('panic\tat\r\n\f'), true],
      ['four-byte', Buffer.from('oops 😀 ü', 'utf8'), true],
      ['empty', Buffer.alloc(0), true],
      ['overlong', Buffer.from([0x41, 0xc0, 0x80]), false],
      ['overlong-e0', Buffer.from([0xe0, 0x80, 0x80]), false],
      ['surrogate', Buffer.from([0xed, 0xa0, 0x80]), false],
      ['past-10ffff', Buffer.from([0xf4, 0x90, 0x80, 0x80]), false],
      ['truncated', Buffer.from([0x41, 0xc3]), false],
      ['stray-continuation', Buffer.from([0x41, 0x80]), false],
      ['nul', Buffer.from([0x41, 0x00]), false],
      ['del', Buffer.from([0x7f]), false],
    ];
    const path = join(dir, 'text.vmpm');
    const w = await BundleWriter.create(path);
    await w.addJsonSection('manifest', { label: 'text check' });
    for (const [name, data] of cases) await w.addRawSection(name, data);
    await w.finish();
    const reader = await BundleReader.open(path);
    try {
      for (const [name, data, text] of cases) {
        const s = await streamSection(reader, name);
        assert.equal(s.text, text, name);
        const parts: Buffer[] = [];
        for await (const c of s.chunks) parts.push(c);
        assert.ok(Buffer.concat(parts).equals(data), name);
      }
    } finally {
      await reader.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
