import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { runCli } from '../helpers/cli';
import { buildBundle, tempDir } from '../../bench/lib/build-bundle';

const tmp = tempDir();
const good = tmp.path('good.vmpm');
const truncated = tmp.path('truncated.vmpm');
const garbage = tmp.path('garbage.vmpm');
const flipped = tmp.path('flipped.vmpm');
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

before(async () => {
  await buildBundle(good, { ranges: [{ start: 0n, length: 0x100000n, name: 'ram', unique: true }], regions: [{ name: 'ram', kind: 'ram', start: 0n, end: 0x100000n }] });
  const bytes = readFileSync(good);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  writeFileSync(garbage, Buffer.from('this is not a vmpm bundle\n'.repeat(100)));
  // Flip one byte inside the first compressed memory frame: the structure still opens, the data does not check out.
  const copy = Buffer.from(bytes);
  const frame = copy.indexOf(ZSTD_MAGIC);
  assert.ok(frame > 0, 'found a zstd frame');
  copy[frame + 200] ^= 0xff;
  writeFileSync(flipped, copy);
});
after(() => tmp.cleanup());

function assertOneLineError(r: { code: number; stdout: string; stderr: string }, what: string): void {
  assert.equal(r.code, 1, `${what}: exit 1 (stderr ${r.stderr})`);
  assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |unexpected error/, what);
}

const commands = (file: string): string[][] => [
  ['info', file],
  ['regs', file],
  ['memmap', file],
  ['read', file, '--phys', '0x0'],
  ['search', file, '--text', 'x'],
  ['errors', file],
  ['events', file],
  ['diff', good, file],
  ['report', file],
];

test('a truncated bundle gives a one-line error and exit 1 for every command', async () => {
  for (const args of commands(truncated)) {
    const r = await runCli(args);
    assertOneLineError(r, args[0]!);
    assert.ok(r.stderr.includes('truncated.vmpm'), `${args[0]}: names the file: ${r.stderr}`);
  }
});

test('a file that is not a bundle, and a missing file, give a one-line error and exit 1', async () => {
  for (const args of commands(garbage)) assertOneLineError(await runCli(args), `${args[0]} garbage`);
  const missing = await runCli(['info', tmp.path('nope.vmpm')]);
  assertOneLineError(missing, 'missing');
  assert.match(missing.stderr, /nope\.vmpm/);
});

test('info on a bundle with a corrupted frame prints the summary with integrity FAILED and exits 1', async () => {
  const r = await runCli(['info', flipped, '--json']);
  assert.equal(r.code, 1, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.integrity.status, 'failed');
  assert.ok(info.integrity.problems.length >= 1);
  assert.equal(info.vm.name, 'testvm', 'the rest of the summary is still there');
  const text = await runCli(['info', flipped]);
  assert.equal(text.code, 1);
  assert.match(text.stdout, /Integrity\s+FAILED: /);
  const fast = await runCli(['info', flipped, '--no-verify', '--json']);
  assert.equal(fast.code, 0);
  assert.equal(JSON.parse(fast.stdout).integrity.status, 'not-checked');
});

test('reading or searching corrupted memory is a one-line error, exit 1', async () => {
  assertOneLineError(await runCli(['read', flipped, '--phys', '0x0', '--length', '4096']), 'read');
  assertOneLineError(await runCli(['search', flipped, '--text', 'never-there']), 'search');
});
