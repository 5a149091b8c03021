import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli';
import { buildBundle, tempDir, type Patch } from '../../bench/lib/build-bundle';

const tmp = tempDir();
const pc = tmp.path('pc.vmpm');
const frames = tmp.path('frames.vmpm');
const pattern = Buffer.from('QMPLAB-PATTERN!\n'.repeat(64));
const pcPatches: Patch[] = [
  { addr: 0x200ffcn, bytes: Buffer.from('HIGH-RAM-ACROSS-PAGES') },
  { addr: 0x5ffen, bytes: Buffer.from('AB') }, // data page followed by a zero page
  { addr: 0x9000n, bytes: Buffer.from('CD') }, // zero page followed by a data page
  { addr: 0x9fffen, bytes: Buffer.from('HO') }, // end of low RAM, then the VGA hole
  { addr: 0xc0000n, bytes: Buffer.from('LE') }, // start of the ROM range after the hole
  { addr: 0xffffen, bytes: Buffer.from('ADJACENT') }, // across two touching ranges (0xc0000.. and 0x100000..)
  { addr: 0x10ffen, bytes: Buffer.from('GA') }, // two data pages with a zero page between them
  { addr: 0x12000n, bytes: Buffer.from('P!') },
  { addr: 0x20000n, bytes: pattern },
  { addr: 0x30000n, bytes: Buffer.from('FORENSIC-MARKER-1\0') },
];

before(async () => {
  // Small frames (16 stored pages) so many matches straddle a frame boundary too.
  await buildBundle(pc, { patches: pcPatches, frameBytes: 64 * 1024 });
  // 5 MiB of unique pages with default 4 MiB frames: the frame boundary sits exactly at 0x400000.
  await buildBundle(frames, {
    ranges: [{ start: 0n, length: 0x500000n, name: 'ram', unique: true }],
    regions: [{ name: 'ram', kind: 'ram', start: 0n, end: 0x500000n }],
    patches: [{ addr: 0x3ffff9n, bytes: Buffer.from('FRAME-STRADDLE') }],
  });
});
after(() => tmp.cleanup());

async function search(file: string, ...args: string[]): Promise<{ matches: Array<{ address: string; length: number; region: string | null; context: { start: string; ascii: string } }>; truncated: boolean }> {
  const r = await runCli(['search', file, ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a match straddling two pages is found once at its exact address, with region and context', async () => {
  const m = await search(pc, '--text', 'HIGH-RAM-ACROSS-PAGES');
  assert.deepEqual(m.matches.map((x) => [x.address, x.length, x.region]), [['0x200ffc', 21, 'pc.ram@high']]);
  assert.equal(m.matches[0]!.context.start, '0x200fec');
  assert.match(m.matches[0]!.context.ascii, /^\.{16}HIGH-RAM-ACROSS-PAGES\.{16}$/);
});

test('a match straddling a 4 MiB frame boundary is found (default frame size)', async () => {
  const info = JSON.parse((await runCli(['info', frames, '--json', '--no-verify'])).stdout);
  assert.equal(info.memory.frames, 2, 'the bundle really has a frame boundary');
  assert.equal(info.memory.uniquePages, 1280);
  const m = await search(frames, '--text', 'FRAME-STRADDLE');
  assert.deepEqual(m.matches.map((x) => x.address), ['0x3ffff9']);
});

test('matches may run from a data page into a zero page and from a zero page into a data page', async () => {
  assert.deepEqual((await search(pc, '--hex', '41 42 00 00 00 00 00 00')).matches.map((x) => x.address), ['0x5ffe']);
  assert.deepEqual((await search(pc, '--hex', '0000000043 44')).matches.map((x) => x.address), ['0x8ffc']);
});

test('matches never span a hole or skipped zero pages, but do span touching ranges', async () => {
  assert.deepEqual((await search(pc, '--text', 'HOLE')).matches, []);
  assert.deepEqual((await search(pc, '--text', 'GAP!')).matches, []);
  const adj = await search(pc, '--text', 'ADJACENT');
  assert.deepEqual(adj.matches.map((x) => [x.address, x.region]), [['0xffffe', 'pc.rom']]);
});

test('--limit stops after N matches and says the list is truncated; without it every repeat is listed', async () => {
  const limited = await search(pc, '--text', 'QMPLAB-PATTERN!', '--limit', '10');
  assert.equal(limited.matches.length, 10);
  assert.equal(limited.truncated, true);
  const all = await search(pc, '--text', 'QMPLAB-PATTERN!');
  assert.equal(all.truncated, false);
  assert.deepEqual(all.matches.map((x) => x.address), Array.from({ length: 64 }, (_, i) => `0x${(0x20000 + 16 * i).toString(16)}`));
});

test('--regex matches bytes (latin1) and reports the matched length', async () => {
  const m = await search(pc, '--regex', 'FORENSIC-MARKER-\\d\\x00');
  assert.deepEqual(m.matches.map((x) => [x.address, x.length]), [['0x30000', 18]]);
});

test('a pattern of zeros matches inside zero pages (which are not stored) from address 0', async () => {
  const m = await search(pc, '--hex', '00000000', '--limit', '3');
  assert.deepEqual(m.matches.map((x) => x.address), ['0x0', '0x4', '0x8']);
  assert.equal(m.truncated, true);
});

test('search text output is a table of addresses; no match says so', async () => {
  const r = await runCli(['search', pc, '--text', 'FORENSIC']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /0x30000.*pc\.ram.*FORENSIC-MARKER-1/);
  assert.match((await runCli(['search', pc, '--text', 'NOT-IN-MEMORY'])).stdout, /no matches/);
});

test('search usage errors exit 2 with one line', async () => {
  for (const args of [[], ['--text', 'a', '--hex', '61'], ['--hex', 'abc'], ['--regex', '(unclosed'], ['--text', 'x', '--limit', '0']]) {
    const r = await runCli(['search', pc, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
