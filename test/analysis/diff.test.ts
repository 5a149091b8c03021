import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli';
import { buildBundle, journalEvent, panicRecord, tempDir, x86Cpu, PC_RANGES, PC_REGIONS } from '../../bench/lib/build-bundle';

const tmp = tempDir();
const A = tmp.path('a.vmpm');
const B = tmp.path('b.vmpm');

before(async () => {
  const common = [{ addr: 0x7c00n, bytes: Buffer.from('UNCHANGED-BOOT') }];
  await buildBundle(A, {
    status: 'running',
    reason: 'none',
    createdAt: '2026-01-02T03:00:00.000Z',
    patches: [...common, { addr: 0x5000n, bytes: Buffer.from('AAAA') }, { addr: 0x30000n, bytes: Buffer.from('GONE-IN-B') }],
    errors: [panicRecord('2026-01-02T02:00:00.000Z', 'old panic')],
    events: [journalEvent('RESUME', 1767322800)],
  });
  await buildBundle(B, {
    cpus: [x86Cpu(0, { rip: 0x7c67n, rbx: 0xbadc0de6n })],
    regions: [...PC_REGIONS.filter((g) => g.name !== 'pc.bios'), { name: 'extra', kind: 'ram', start: 0x2000000n, end: 0x2010000n }],
    ranges: [...PC_RANGES.filter((r) => r.name !== 'pc.bios'), { start: 0x2000000n, length: 0x10000n, name: 'extra', unique: true }],
    patches: [
      ...common,
      { addr: 0x5000n, bytes: Buffer.from('BBBB') },
      { addr: 0xffffdn, bytes: Buffer.from('SPLIT!') },
      { addr: 0x200000n, bytes: Buffer.from('NEW') },
      { addr: 0x201000n, bytes: Buffer.from('X') },
    ],
    errors: [panicRecord('2026-01-02T02:00:00.000Z', 'old panic'), panicRecord('2026-01-02T03:04:04.000Z')],
    events: [journalEvent('RESUME', 1767322800), journalEvent('GUEST_PANICKED', 1767323044, { action: 'pause' })],
  });
});
after(() => tmp.cleanup());

test('diff --json: exactly the changed, added and removed pages, coalesced and split at region boundaries', async () => {
  const r = await runCli(['diff', A, B, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.deepEqual(d.memory.changed, [
    { start: '0x5000', end: '0x6000', region: 'pc.ram', pages: 1 },
    { start: '0x30000', end: '0x31000', region: 'pc.ram', pages: 1 },
    { start: '0xff000', end: '0x100000', region: 'pc.rom', pages: 1 },
    { start: '0x100000', end: '0x101000', region: 'pc.ram@high', pages: 1 },
    { start: '0x200000', end: '0x202000', region: 'pc.ram@high', pages: 2 },
  ]);
  assert.deepEqual(d.memory.added, [{ start: '0x2000000', end: '0x2010000', region: 'extra', pages: 16 }]);
  assert.deepEqual(d.memory.removed, [{ start: '0xfffc0000', end: '0x100000000', region: 'pc.bios', pages: 64 }]);
  const total = (0xa0000 + 0x40000 + 0xf00000) / 4096;
  assert.deepEqual(d.memory.counts, { changedPages: 6, addedPages: 16, removedPages: 64, unchangedPages: total - 6 });
  assert.deepEqual(
    Object.fromEntries(d.memory.byRegion.map((x: { region: string; changedPages: number; addedPages: number; removedPages: number }) => [x.region, [x.changedPages, x.addedPages, x.removedPages]])),
    { 'pc.ram': [2, 0, 0], 'pc.rom': [1, 0, 0], 'pc.ram@high': [3, 0, 0], extra: [0, 16, 0], 'pc.bios': [0, 0, 64] },
  );
});

test('diff --json: register changes per vCPU as before/after hex, identity and run state, memory map, new errors and events', async () => {
  const d = JSON.parse((await runCli(['diff', A, B, '--json'])).stdout);
  assert.deepEqual(d.cpus, [{ index: 0, registers: { rip: { a: '0x7c66', b: '0x7c67' }, rbx: { a: '0xbadc0de5', b: '0xbadc0de6' } } }]);
  assert.equal(d.identity.sameVm, true);
  assert.deepEqual(d.identity.changes.find((c: { field: string }) => c.field === 'runState.status'), { field: 'runState.status', a: 'running', b: 'guest-panicked' });
  assert.deepEqual(d.memmap.added.map((g: { name: string }) => g.name), ['extra']);
  assert.deepEqual(d.memmap.removed.map((g: { name: string }) => g.name), ['pc.bios']);
  assert.deepEqual(d.errors.new.map((e: { summary: string }) => e.summary), ['GUEST_PANICKED (action pause)']);
  assert.deepEqual(d.events.new.map((e: { event: string }) => e.event), ['GUEST_PANICKED']);
});

test('diff of a bundle with itself finds nothing', async () => {
  const d = JSON.parse((await runCli(['diff', A, A, '--json'])).stdout);
  assert.deepEqual([d.memory.changed, d.memory.added, d.memory.removed, d.cpus, d.errors.new, d.identity.changes], [[], [], [], [], [], []]);
});

test('diff --show-bytes hexdumps the differing 16-byte lines of the first changed pages', async () => {
  const d = JSON.parse((await runCli(['diff', A, B, '--json', '--show-bytes'])).stdout);
  assert.deepEqual(d.bytes[0], { page: '0x5000', rows: [{ offset: '0x5000', a: `41414141${'00'.repeat(12)}`, b: `42424242${'00'.repeat(12)}` }], moreRows: 0 });
  const text = await runCli(['diff', A, B, '--show-bytes']);
  assert.equal(text.code, 0);
  assert.match(text.stdout, /- 00005000: 4141 4141 0000 .*AAAA\.+\n\+ 00005000: 4242 4242 0000 .*BBBB\.+\n\s+\^\^\^\^ \^\^\^\^/);
});

test('diff text summarises counts, ranges with regions, registers and new records', async () => {
  const r = await runCli(['diff', A, B]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /6 changed, 16 added, 64 removed/);
  assert.match(r.stdout, /changed.*0x200000.*0x202000.*2.*pc\.ram@high/);
  assert.match(r.stdout, /rbx.*0xbadc0de5.*0xbadc0de6/);
  assert.match(r.stdout, /guest-panicked: GUEST_PANICKED \(action pause\)/);
});
