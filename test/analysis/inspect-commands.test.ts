import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { runCli, VMPM_BIN } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { buildBundle, expectedByte, journalEvent, panicRecord, tempDir, x86Cpu, KNOWN_REGISTERS, PC_RANGES, type BundleSpec } from '../../bench/lib/build-bundle';
import { toHex } from '../../src/util/hex';

const tmp = tempDir();
const bundle = tmp.path('known.vmpm');
const patches = [
  { addr: 0x7c00n, bytes: Buffer.from('BOOT-SECTOR-MARKER') },
  { addr: 0xc1000n, bytes: Buffer.from('OPTION-ROM-MARKER') },
  { addr: 0x200ffcn, bytes: Buffer.from('HIGH-RAM-ACROSS-PAGES') },
  { addr: 0xfffffff0n, bytes: Buffer.from([0xea, 0x5b, 0xe0, 0x00, 0xf0]) },
];
const spec: BundleSpec = {
  cpus: [x86Cpu(0), x86Cpu(1, { rip: 0xfff0n, rax: 0n }, 'protected')],
  patches,
  ranges: PC_RANGES.map((r) => (r.name === 'pc.bios' ? { ...r, unique: true } : r)),
  errors: [panicRecord('2026-01-02T03:04:04.500Z'), { time: '2026-01-02T03:04:03.000Z', source: 'io-status', kind: 'block-io-status', severity: 'error', summary: 'ide1-hd0 io-status failed', device: 'ide1-hd0', raw: {} }],
  events: [journalEvent('STOP', 1767323044), journalEvent('GUEST_PANICKED', 1767323043, { action: 'pause' })],
};

before(async () => {
  await buildBundle(bundle, spec);
});
after(() => tmp.cleanup());

test('info --json answers identity, run state, CPUs, memory counts, errors, SHA-256 and integrity ok', async () => {
  const r = await runCli(['info', bundle, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.vm.name, 'testvm');
  assert.equal(info.vm.uuid, '11111111-2222-3333-4444-555555555555');
  assert.equal(info.runState.after.status, 'guest-panicked');
  assert.equal(info.integrity.status, 'ok');
  assert.match(info.sha256, /^[0-9a-f]{64}$/);
  assert.equal(info.fileSize, statSync(bundle).size);
  assert.deepEqual(info.cpus.map((c: { index: number; pc: string; mode: string }) => [c.index, c.mode, c.pc]), [[0, 'real', '0x7c66'], [1, 'protected', '0xfff0']]);
  const pages = (0xa0000 + 0x40000 + 0xf00000 + 0x40000) / 4096;
  assert.equal(info.memory.pages, pages);
  // Data pages: the bios range is unique-filled (64 pages), plus one page per patch (the high-RAM one spans two).
  assert.equal(info.memory.dataPages, 64 + 1 + 1 + 2);
  assert.equal(info.memory.capturedBytes, toHex(BigInt(pages * 4096)));
  assert.deepEqual(info.errors.byKind, { 'guest-panicked': 1, 'block-io-status': 1 });
  assert.equal(info.events.total, 2);
});

test('info text is one screen with the run state, SHA-256 and integrity status', async () => {
  const r = await runCli(['info', bundle]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Run state\s+guest-panicked \(GUEST_PANICKED\)/);
  assert.match(r.stdout, /Integrity\s+ok/);
  assert.match(r.stdout, /SHA-256\s+[0-9a-f]{64}/);
  assert.doesNotMatch(r.stdout, /\x1b\[/, 'no colour escapes when NO_COLOR is set / not a TTY');
  assert.ok(r.stdout.split('\n').length < 25);
});

test('regs --json gives exact 64-bit hex registers, groups and decoded flags per vCPU; --cpu selects one', async () => {
  const r = await runCli(['regs', bundle, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  assert.equal(m.cpus.length, 2);
  for (const [name, value] of Object.entries(KNOWN_REGISTERS)) assert.equal(m.cpus[0].registers[name], toHex(value), name);
  assert.equal(m.cpus[0].registers.r15, '0xfffffffffffffff1');
  assert.equal(m.cpus[0].mode, 'real');
  assert.ok(m.cpus[0].groups.length > 1);
  const rflags = m.cpus[0].flags.find((f: { register: string }) => f.register === 'rflags');
  assert.ok(rflags, 'rflags decoded');
  assert.ok(rflags.set.includes('ZF') && rflags.set.includes('PF'), JSON.stringify(rflags));
  const one = JSON.parse((await runCli(['regs', bundle, '--cpu', '1', '--json'])).stdout);
  assert.deepEqual(one.cpus.map((c: { index: number }) => c.index), [1]);
  assert.equal(one.cpus[0].registers.rip, '0xfff0');
});

test('regs text groups registers and shows the decoded flags; an unknown --cpu is a one-line error, exit 1', async () => {
  const r = await runCli(['regs', bundle, '--cpu', '0']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /vCPU 0\s+x86_64\s+real mode\s+halted/);
  assert.match(r.stdout, /rbx=0xbadc0de5/);
  assert.match(r.stdout, /rflags\s+0x46/);
  const bad = await runCli(['regs', bundle, '--cpu', '7']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /no vCPU 7.*0, 1/);
});

test('memmap --json lists regions with exclusive ends and recomputes captured from the stored ranges', async () => {
  const r = await runCli(['memmap', bundle, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout);
  const byName = Object.fromEntries(m.regions.map((g: { name: string }) => [g.name, g]));
  assert.deepEqual(
    { start: byName['pc.ram'].start, end: byName['pc.ram'].end, captured: byName['pc.ram'].captured, kind: byName['pc.ram'].kind },
    { start: '0x0', end: '0xa0000', captured: true, kind: 'ram' },
  );
  assert.equal(byName['vga-lowmem'].captured, false);
  assert.equal(byName['vga-lowmem'].capturedBytes, '0x0');
  assert.equal(byName['pc.bios'].end, '0x100000000');
  assert.equal(m.captured.length, 4);
  const text = await runCli(['memmap', bundle]);
  assert.match(text.stdout, /vga-lowmem.*io.*0xa0000.*0xc0000.*128 KiB.*no/);
});

test('read shows the known bytes at an address in every captured region (xxd format)', async () => {
  for (const p of patches) {
    const r = await runCli(['read', bundle, '--phys', toHex(p.addr), '--length', String(p.bytes.length), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.address, toHex(p.addr));
    assert.equal(j.hex, p.bytes.toString('hex'), toHex(p.addr));
  }
  // unique-filled BIOS bytes, checked against the builder's own model
  const addr = 0xfffc1234n;
  const j = JSON.parse((await runCli(['read', bundle, '--phys', toHex(addr), '--length', '32', '--json'])).stdout);
  const want = Buffer.from(Array.from({ length: 32 }, (_, i) => expectedByte(spec, addr + BigInt(i))));
  assert.equal(j.hex, want.toString('hex'));
  const dump = await runCli(['read', bundle, '--phys', '0x7c00', '--length', '32']);
  assert.equal(dump.code, 0);
  assert.equal(dump.stdout.split('\n')[0], '00007c00: 424f 4f54 2d53 4543 544f 522d 4d41 524b  BOOT-SECTOR-MARK');
});

test('read of a hole is a one-line error naming it, and --zero-fill reads it as zeros', async () => {
  const r = await runCli(['read', bundle, '--phys', '0x9fff0', '--length', '0x20']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /0xa0000-0xa0010 was not captured.*--zero-fill/);
  const z = await runCli(['read', bundle, '--phys', '0x9fff0', '--length', '0x20', '--zero-fill', '--json']);
  assert.equal(z.code, 0, z.stderr);
  assert.equal(JSON.parse(z.stdout).hex, '00'.repeat(32));
});

test('read --raw -o writes exact bytes, refuses to overwrite without --force, and leaves no file on a hole', async () => {
  const out = tmp.path('raw.bin');
  const r = await runCli(['read', bundle, '--phys', '0x200ffc', '--length', '21', '--raw', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(out, 'latin1'), 'HIGH-RAM-ACROSS-PAGES');
  assert.equal(statSync(out).mode & 0o777, 0o600);
  const again = await runCli(['read', bundle, '--phys', '0x0', '--length', '4', '--raw', '-o', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists.*--force/);
  assert.equal(readFileSync(out, 'latin1'), 'HIGH-RAM-ACROSS-PAGES');
  const forced = await runCli(['read', bundle, '--phys', '0x7c00', '--length', '4', '--raw', '-o', out, '--force']);
  assert.equal(forced.code, 0);
  assert.equal(readFileSync(out, 'latin1'), 'BOOT');
  const holeOut = tmp.path('hole.bin');
  const hole = await runCli(['read', bundle, '--phys', '0xa0000', '--length', '16', '--raw', '-o', holeOut]);
  assert.equal(hole.code, 1);
  assert.equal(existsSync(holeOut), false);
});

test('read rejects bad addresses and lengths as usage errors (exit 2)', async () => {
  for (const args of [['--phys', 'zz'], ['--phys', '0x0', '--length', '0'], ['--phys', '0x0', '--length', 'lots']]) {
    const r = await runCli(['read', bundle, ...args]);
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});

test('errors and events print a timeline sorted by time', async () => {
  const e = JSON.parse((await runCli(['errors', bundle, '--json'])).stdout);
  assert.deepEqual(e.records.map((r: { kind: string }) => r.kind), ['block-io-status', 'guest-panicked']);
  assert.equal(e.bySeverity.critical, 1);
  const text = await runCli(['errors', bundle]);
  assert.match(text.stdout, /guest-panicked[\s\S]*GUEST_PANICKED \(action pause\)/);
  const ev = JSON.parse((await runCli(['events', bundle, '--json'])).stdout);
  assert.deepEqual(ev.events.map((x: { event: string }) => x.event), ['GUEST_PANICKED', 'STOP']);
  const evText = await runCli(['events', bundle]);
  assert.match(evText.stdout, /GUEST_PANICKED.*\{"action":"pause"\}/);
});

test('a bundle without optional sections still answers every command ("not recorded")', async () => {
  const bare = tmp.path('bare.vmpm');
  await buildBundle(bare, { omit: ['manifest', 'cpus', 'memmap', 'errors', 'events'], ranges: [{ start: 0n, length: 0x2000n }] });
  for (const cmd of ['info', 'regs', 'memmap', 'errors', 'events']) {
    const r = await runCli([cmd, bare]);
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
  }
  assert.match((await runCli(['errors', bare])).stdout, /not recorded/);
});

test('colour only when asked for: NO_COLOR wins over FORCE_COLOR, piped output is plain', async () => {
  const forced = await runCli(['info', bundle, '--no-verify'], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
  assert.match(forced.stdout, /\x1b\[1m/);
  const both = await runCli(['info', bundle, '--no-verify'], { env: { NO_COLOR: '1', FORCE_COLOR: '1' } });
  assert.doesNotMatch(both.stdout, /\x1b\[/);
  const piped = await runCli(['errors', bundle], { env: { NO_COLOR: '' } });
  assert.doesNotMatch(piped.stdout, /\x1b\[/);
});

test('read --raw refuses to write binary to a terminal (exit 2) but writes to a pipe', { skip: requireTools('script') }, async () => {
  // `script` gives the command a pseudo-terminal as stdout.
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(VMPM_BIN)} read ${JSON.stringify(bundle)} --phys 0x7c00 --length 4 --raw; echo "rc=$?"`;
  const tty = execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'latin1', env: { ...process.env, NO_COLOR: '1' } });
  assert.match(tty, /refusing to write raw binary to a terminal/);
  assert.match(tty, /rc=2/);
  const piped = await runCli(['read', bundle, '--phys', '0x7c00', '--length', '4', '--raw']);
  assert.equal(piped.code, 0);
  assert.equal(piped.stdout, 'BOOT');
});
