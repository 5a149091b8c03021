import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleReader } from '../../src/bundle';
import { launchBootSectorGuest, type LaunchedQemu } from '../../src/guest';
import { parseTrailer } from '../../src/bundle/structure';
import { requireTools } from '../helpers/requirements';
import { runCli } from '../helpers/cli';

/**
 * vmpm slim on a real capture of the known-answer guest (64 KiB of pattern at 0x20000, a marker at
 * 0x30000), with an attachment: every section copied byte for byte, every page digest kept.
 */
const skip = requireTools('qemu-system-x86_64');
let guest: LaunchedQemu | undefined;
let full = '';
before(async () => {
  if (skip) return;
  guest = await launchBootSectorGuest({});
  writeFileSync(join(guest.dir, 'serial.log'), 'Kernel panic - not syncing: test\n');
  full = join(guest.dir, 'full.vmpm');
  const r = await runCli(['capture', '--qmp', guest.endpoint, '-o', full, '--attach', join(guest.dir, 'serial.log')]);
  assert.equal(r.code, 0, r.stderr);
});
after(async () => guest?.kill());
const path = (n: string): string => join(guest!.dir, n);

test('slim keeps every section byte for byte and every page digest; verify, info, report, diff say slim', { skip }, async () => {
  const slim = path('slim.vmpm');
  const r = await runCli(['slim', full, '-o', slim]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^slim .*slim\.vmpm \(\d+ bytes, from \d+\): \d+ page digests kept, no memory contents\n$/);
  assert.ok(statSync(slim).size < statSync(full).size / 2);

  const a = await BundleReader.open(full);
  const b = await BundleReader.open(slim);
  try {
    assert.equal(b.digestsOnly, true);
    assert.deepEqual(b.version, { major: 1, minor: 1 });
    const sa = new Map(a.sections().map((s) => [s.name, s.sha256]));
    const sb = new Map(b.sections().map((s) => [s.name, s.sha256]));
    for (const [name, digest] of sa) assert.equal(sb.get(name), digest, `section ${name} copied byte for byte`);
    assert.ok(sb.has('attachment/serial.log') && sb.has('slim'));
    assert.deepEqual(b.ranges(), a.ranges());
    assert.deepEqual([...b.pages()].map((p) => [p.addr, p.digest.toString('hex')]), [...a.pages()].map((p) => [p.addr, p.digest.toString('hex')]));
    assert.deepEqual(b.stats(), { ...a.stats(), frames: 0, compressedBytes: 0 });
    await assert.rejects(b.read(0x20000n, 16), /is a slim bundle: it has every page's digest but no memory contents/);
  } finally {
    await a.close();
    await b.close();
  }

  const v = await runCli(['verify', slim]);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout.split('\n')[0]!, /^SLIM bundle: page digests only, no memory contents \(made from full\.vmpm, SHA-256 [0-9a-f]{16}…, by \S+@\S+ at /);
  assert.match(v.stdout, /format\s+1\.1/);
  const info = await runCli(['info', slim]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout.split('\n')[0]!, /^Custody\s+SLIM bundle/);
  const report = await runCli(['report', slim]);
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stdout.split('\n')[0]!, /^# vmpm report of a SLIM bundle: /);
  const html = await runCli(['report', slim, '--format', 'html', '-o', path('slim.html')]);
  assert.equal(html.code, 0, html.stderr);

  const d = await runCli(['diff', full, slim]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /note: B is slim: it has no memory contents, only page digests/);
  assert.match(d.stdout, /Memory \(from page digests\):\n {2}0 changed, 0 added, 0 removed, \d+ unchanged pages/);
  const dj = JSON.parse((await runCli(['diff', full, slim, '--json', '--show-bytes'])).stdout) as { b: { slim: boolean }; memory: { counts: { changedPages: number } } };
  assert.equal(dj.b.slim, true);
  assert.equal(dj.memory.counts.changedPages, 0);

  for (const args of [['read', slim, '--phys', '0x20000', '--length', '16'], ['search', slim, '--text', 'QMPLAB']]) {
    const x = await runCli(args);
    assert.equal(x.code, 1, args.join(' '));
    assert.match(x.stderr, /^vmpm: .*slim\.vmpm is a slim bundle: it has every page's digest but no memory contents \(made by vmpm slim\); read the full bundle\n$/);
  }
  const again = await runCli(['slim', slim, '-o', path('slim2.vmpm')]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is already a slim bundle/);
});

test('slim --no-attachments leaves the attachments out and says so', { skip }, async () => {
  const slim = path('noatt.vmpm');
  const r = await runCli(['slim', full, '-o', slim, '--no-attachments', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { record: { omitted: string[]; omittedSections: string[] } };
  assert.deepEqual(j.record.omitted, ['memory contents', 'attachments']);
  assert.deepEqual(j.record.omittedSections, ['attachment/serial.log']);
  const b = await BundleReader.open(slim);
  try {
    assert.equal(b.has('attachment/serial.log'), false);
  } finally {
    await b.close();
  }
});

test('a 1.0 reader sees a slim bundle as one without memory; a damaged memory index is refused', { skip }, async () => {
  const slim = path('slim-old.vmpm');
  assert.equal((await runCli(['slim', full, '-o', slim])).code, 0);
  const buf = readFileSync(slim);
  const foot = buf.length - 96;
  const T = Number(buf.readBigUInt64LE(foot));
  const L = Number(buf.readBigUInt64LE(foot + 8));
  // What a 1.0 reader does: the trailer alone (no memory index applied).
  const old = parseTrailer(slim, buf.subarray(T, T + L), 32, T);
  assert.equal(old.ranges.length, 0);
  assert.equal(old.frames.length, 0);
  assert.deepEqual(old.unknownSections.map((s) => [s.name, s.type]), [['memory-index', 3]]);
  // One changed byte inside the memory-index section: refused when opened, in one line.
  const entry = old.unknownSections[0]!;
  const bad = Buffer.from(buf);
  bad[entry.offset + entry.length - 1]! ^= 1;
  writeFileSync(path('bad-index.vmpm'), bad);
  const r = await runCli(['info', path('bad-index.vmpm')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^vmpm: .*bad-index\.vmpm: section "memory-index" SHA-256 mismatch/);
});
