import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { forgeJson } from '../../bench/lib/forge';
import { BundleReader, type RedactionSection } from '../../src/bundle';
import { runCli } from '../helpers/cli';
import { buildBundle, PC_RANGES, tempDir, type BundleSpec } from '../../bench/lib/build-bundle';

/**
 * vmpm redact on synthetic bundles whose every byte is known (unique page fills plus patches): what
 * was asked for reads as zeros, every other page keeps its digest, the record is exact.
 */
const t = tempDir('vmpm-redact-');
after(() => t.cleanup());

const SECRET = 'password=hunter2-correct-horse';
const spec: BundleSpec = {
  ranges: PC_RANGES.map((r) => ({ ...r, unique: true })),
  patches: [
    { addr: 0x2ff0n, bytes: Buffer.from(SECRET) }, // crosses the page boundary at 0x3000
    { addr: 0x100000n + 0x100000n - 5n, bytes: Buffer.from(SECRET) }, // crosses a 1 MiB window boundary
    { addr: 0x500000n, bytes: Buffer.alloc(8192) }, // two zero pages inside a unique range
  ],
};

async function pages(path: string): Promise<Map<bigint, string>> {
  const r = await BundleReader.open(path);
  try {
    return new Map([...r.pages()].map((p) => [p.addr, p.digest.toString('hex')]));
  } finally {
    await r.close();
  }
}

async function read(path: string, addr: bigint, n: number): Promise<Buffer> {
  const r = await BundleReader.open(path);
  try {
    return await r.read(addr, n);
  } finally {
    await r.close();
  }
}

async function redaction(path: string): Promise<RedactionSection> {
  const r = await BundleReader.open(path);
  try {
    return await r.json<RedactionSection>('redaction');
  } finally {
    await r.close();
  }
}

test('--range and --pattern: erased bytes read as zeros, every other page keeps its digest, the record is exact', async () => {
  const full = t.path('full.vmpm');
  await buildBundle(full, spec);
  const out = t.path('red.vmpm');
  const r = await runCli(['redact', full, '-o', out, '--range', '0x10800-0x12000', '--range', '0x500000-0x502000', '--pattern', 'password=[a-z0-9-]+', '--reason', 'customer secrets']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^redacted .*red\.vmpm \(\d+ bytes\): \d+ byte\(s\) erased in 4 range\(s\), 6 page\(s\) changed/);

  const before = await pages(full);
  const after = await pages(out);
  const rec = (await redaction(out)).records;
  assert.equal(rec.length, 1);
  const record = rec[0]!;
  assert.equal(record.reason, 'customer secrets');
  assert.match(record.by, /^\S+@\S+$/);
  assert.equal(record.source.file, 'full.vmpm');
  assert.deepEqual(record.requests, ['range 0x10800-0x12000', 'range 0x500000-0x502000', 'pattern /password=[a-z0-9-]+/']);
  const len = BigInt(SECRET.length);
  assert.deepEqual(
    record.erased.map((e) => [e.start, e.end]),
    [
      ['0x2ff0', `0x${(0x2ff0n + len).toString(16)}`],
      ['0x10800', '0x12000'],
      [`0x${(0x1ffffbn).toString(16)}`, `0x${(0x1ffffbn + len).toString(16)}`],
      ['0x500000', '0x502000'],
    ],
  );
  // Pages changed: the two the first secret spans, the two under the --range, the two the second spans;
  // the zero pages under the second --range did not change (already zero): not listed.
  const changed = ['0x2000', '0x3000', '0x10000', '0x11000', '0x1ff000', '0x200000'];
  assert.deepEqual(record.pages.map((p) => p.addr), changed);
  for (const p of record.pages) assert.equal(p.originalSha256, before.get(BigInt(p.addr)), `original digest of ${p.addr}`);
  for (const [addr, digest] of before) {
    if (changed.includes(`0x${addr.toString(16)}`)) assert.notEqual(after.get(addr), digest, `page ${addr.toString(16)} changed`);
    else assert.equal(after.get(addr), digest, `page 0x${addr.toString(16)} untouched`);
  }
  assert.deepEqual(await read(out, 0x2ff0n, SECRET.length), Buffer.alloc(SECRET.length));
  assert.deepEqual(await read(out, 0x1ffffbn, SECRET.length), Buffer.alloc(SECRET.length));
  assert.deepEqual(await read(out, 0x10800n, 0x1800), Buffer.alloc(0x1800));
  // bytes next to the erased ones are intact
  assert.deepEqual(await read(out, 0x2fe0n, 16), await read(full, 0x2fe0n, 16));
  assert.deepEqual(await read(out, 0x107f8n, 8), await read(full, 0x107f8n, 8));

  const v = await runCli(['verify', out]);
  assert.equal(v.code, 0, v.stdout);
  assert.match(v.stdout.split('\n')[0]!, /^REDACTED bundle: \d+ byte\(s\) erased \(read as zeros\) in 6 page\(s\), reason: customer secrets/);
  const report = await runCli(['report', out]);
  assert.match(report.stdout.split('\n')[0]!, /^# vmpm report of a REDACTED bundle: /);
  const info = await runCli(['info', out]);
  assert.match(info.stdout.split('\n')[0]!, /^Custody\s+REDACTED bundle/);
  const search = await runCli(['search', out, '--text', 'password=']);
  assert.equal(search.code, 0);
  assert.doesNotMatch(search.stdout, /0x2ff0|0x1ffffb/);

  // Redacting again appends a record; slimming keeps both facts visible.
  const again = t.path('red2.vmpm');
  assert.equal((await runCli(['redact', out, '-o', again, '--range', '0x0-0x1000'])).code, 0);
  const recs = (await redaction(again)).records;
  assert.equal(recs.length, 2);
  assert.equal(recs[1]!.source.file, 'red.vmpm');
  assert.equal(recs[1]!.reason, null);
  const slim = t.path('red2.slim.vmpm');
  assert.equal((await runCli(['slim', again, '-o', slim])).code, 0);
  const rs = await runCli(['report', slim]);
  assert.match(rs.stdout.split('\n')[0]!, /^# vmpm report of a SLIM, REDACTED bundle: /);
  const onSlim = await runCli(['redact', slim, '-o', t.path('x.vmpm'), '--range', '0x0-0x1000']);
  assert.equal(onSlim.code, 1);
  assert.match(onSlim.stderr, /is a slim bundle: it has no memory contents to redact/);
});

test('bad requests: one line, nothing written', async () => {
  const full = t.path('full2.vmpm');
  await buildBundle(full, spec);
  const cases: Array<[string[], number, RegExp]> = [
    [[], 2, /redact needs at least one --range, --virt or --pattern/],
    [['--pattern', '(unclosed'], 2, /--pattern "\(unclosed" is not a valid JavaScript regular expression/],
    [['--range', '0x2000-0x1000'], 2, /END must be above START/],
    [['--range', 'lots'], 2, /expected START-END/],
    [['--cpu', '0', '--range', '0x0-0x10'], 2, /--cpu only applies to --virt/],
  ];
  for (const [args, code, re] of cases) {
    const out = t.path('bad.vmpm');
    const r = await runCli(['redact', full, '-o', out, ...args]);
    assert.equal(r.code, code, args.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.ok(!existsSync(out));
  }
  // A range over nothing captured writes the copy but says nothing was erased.
  const r = await runCli(['redact', full, '-o', t.path('none.vmpm'), '--range', '0xa0000-0xb0000']);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /warning: nothing was erased: no request covers captured memory/);
});

test('a forged redaction section (digests recomputed) is one line in info, report and redact, never a crash', async () => {
  const full = t.path('full3.vmpm');
  await buildBundle(full, spec);
  const red = t.path('red3.vmpm');
  assert.equal((await runCli(['redact', full, '-o', red, '--range', '0x0-0x1000'])).code, 0);
  const forged = t.path('forged-redaction.vmpm');
  writeFileSync(forged, forgeJson(readFileSync(red), { redaction: { records: [{ by: 'x', erased: 'everything' }] } }));
  for (const args of [['info', forged], ['report', forged], ['redact', forged, '-o', t.path('y.vmpm'), '--range', '0x0-0x10']]) {
    const r = await runCli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /^vmpm: .*forged-redaction\.vmpm: bundle section "redaction": field records\[0\]\.\S+ must be /);
  }
});
