import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMtreeFlat, ramRanges } from '../../src/capture/parse/mtree';
import type { FlatRegion } from '../../src/capture/parse/mtree';
import { VmpmError } from '../../src/util/errors';
import { mtreeFixture } from '../arch/fixtures';

const hex = (r: { start: bigint; end: bigint; name: string; blockOffset: bigint }) =>
  [r.name, `0x${r.start.toString(16)}`, `0x${r.end.toString(16)}`, `0x${r.blockOffset.toString(16)}`];

test('pc -m 4G after SeaBIOS: RAM is 0..0xc0000000 and 0x100000000..0x140000000 (pc.ram @0xc0000000), nothing from the hole', () => {
  const ram = ramRanges(parseMtreeFlat(mtreeFixture('pc-4G.txt')));
  assert.deepEqual(ram.map(hex), [
    ['pc.ram', '0x0', '0xc0000000', '0x0'],
    ['pc.ram', '0x100000000', '0x140000000', '0xc0000000'],
  ]);
});

test('q35 -m 4G after SeaBIOS: RAM is 0..0x80000000 and 0x100000000..0x180000000', () => {
  const ram = ramRanges(parseMtreeFlat(mtreeFixture('q35-4G.txt')));
  assert.deepEqual(ram.map(hex), [
    ['pc.ram', '0x0', '0x80000000', '0x0'],
    ['pc.ram', '0x100000000', '0x180000000', '0x80000000'],
  ]);
});

test('the rom views of pc.ram left by SeaBIOS (0xc3000-0xe7fff, 0xf0000-0xfffff) are captured as RAM: pc -m 64 is one range', () => {
  const regions = parseMtreeFlat(mtreeFixture('pc-64M.txt'));
  const romViews = regions.filter((r) => r.addressSpace === 'memory' && r.name === 'pc.ram' && r.kind === 'rom');
  assert.deepEqual(romViews.map((r) => [r.start, r.end, r.offset]), [
    [0xc3000n, 0xe8000n, 0xc3000n],
    [0xf0000n, 0x100000n, 0xf0000n],
  ]);
  assert.deepEqual(ramRanges(regions).map(hex), [['pc.ram', '0x0', '0x4000000', '0x0']]);
});

test('before the BIOS runs (-S), the legacy area is real ROM (pc.rom, pc.bios) and is not RAM', () => {
  const pc = ramRanges(parseMtreeFlat(mtreeFixture('pc-4G-prelaunch.txt')));
  assert.deepEqual(pc.map(hex), [
    ['pc.ram', '0x0', '0xc0000', '0x0'],
    ['pc.ram', '0x100000', '0xc0000000', '0x100000'],
    ['pc.ram', '0x100000000', '0x140000000', '0xc0000000'],
  ]);
  const q35 = ramRanges(parseMtreeFlat(mtreeFixture('q35-4G-prelaunch.txt')));
  assert.deepEqual(q35.map(hex).at(-1), ['pc.ram', '0x100000000', '0x180000000', '0x80000000']);
});

test('aarch64 virt: RAM at 0x40000000, flash (romd) is not RAM', () => {
  const regions = parseMtreeFlat(mtreeFixture('aarch64-virt.txt'));
  assert.deepEqual(ramRanges(regions).map(hex), [['mach-virt.ram', '0x40000000', '0x44000000', '0x0']]);
  const flash = regions.find((r) => r.addressSpace === 'memory' && r.name === 'virt.flash0');
  assert.deepEqual(flash && [flash.kind, flash.start, flash.end], ['romd', 0n, 0x4000000n]);
});

test('every address space sharing a FlatView gets the regions; ends are exclusive; prio, kind and @offset are kept', () => {
  const regions = parseMtreeFlat(mtreeFixture('pc-64M.txt'));
  const spaces = new Set(regions.map((r) => r.addressSpace));
  assert.deepEqual([...spaces].sort(), ['I/O', 'cpu-memory-0', 'cpu-smm-0', 'memory']);
  const inMemory = regions.filter((r) => r.addressSpace === 'memory');
  const inCpu = regions.filter((r) => r.addressSpace === 'cpu-memory-0');
  assert.deepEqual(inCpu.map((r) => ({ ...r, addressSpace: 'memory' })), inMemory);
  const bios = inMemory.find((r) => r.name === 'pc.bios');
  assert.deepEqual(bios, { addressSpace: 'memory', name: 'pc.bios', kind: 'rom', start: 0xfffc0000n, end: 0x100000000n, priority: 0 });
  const rtc = regions.find((r) => r.addressSpace === 'I/O' && r.name === 'rtc');
  assert.deepEqual(rtc && [rtc.kind, rtc.start, rtc.end, rtc.offset], ['i/o', 0x71n, 0x72n, 1n]);
});

test('under KVM the accelerator suffix is not part of the name', () => {
  const regions = parseMtreeFlat(mtreeFixture('pc-64M-kvm.txt'));
  const memory = regions.filter((r) => r.addressSpace === 'memory' && r.kind !== 'i/o');
  assert.deepEqual(memory.map((r) => r.name), ['pc.ram', 'pc.ram', 'pc.ram', 'pc.ram', 'pc.ram', 'pc.bios']);
  assert.equal(memory[1]!.offset, 0xc3000n);
  assert.deepEqual(ramRanges(regions).map(hex), [['pc.ram', '0x0', '0x4000000', '0x0']]);
});

test('a region covering the whole 64-bit space ends at 2^64 and negative priorities parse', () => {
  const text = 'FlatView #0\r\n AS "x", root: x\r\n Root memory region: x\r\n  0000000000000000-ffffffffffffffff (prio -1, i/o): unassigned\r\n';
  const [r] = parseMtreeFlat(text);
  assert.deepEqual(r, { addressSpace: 'x', name: 'unassigned', kind: 'i/o', start: 0n, end: 1n << 64n, priority: -1 });
});

test('ranges are merged only when contiguous in both address and block offset, and never across blocks', () => {
  const region = (start: bigint, end: bigint, name: string, offset?: bigint): FlatRegion => ({
    addressSpace: 'memory', name, kind: 'ram', start, end, ...(offset === undefined ? {} : { offset }),
  });
  const ram = ramRanges([
    region(0x2000n, 0x3000n, 'a', 0x5000n), // offset jump: a new range
    region(0x0n, 0x1000n, 'a'),
    region(0x1000n, 0x2000n, 'a', 0x1000n),
    region(0x3000n, 0x4000n, 'b', 0x6000n), // another block
    { ...region(0x4000n, 0x5000n, 'dev'), kind: 'ramd' }, // device memory is not guest RAM
  ]);
  assert.deepEqual(ram.map(hex), [
    ['a', '0x0', '0x2000', '0x0'],
    ['a', '0x2000', '0x3000', '0x5000'],
    ['b', '0x3000', '0x4000', '0x6000'],
  ]);
});

test('malformed region lines, HMP error text and empty output are rejected with one clear line', () => {
  const bad = mtreeFixture('pc-64M.txt').replace('(prio 0, ram): pc.ram @0000000000100000', '(prio x, ram): pc.ram');
  assert.throws(() => parseMtreeFlat(bad), (e: unknown) => e instanceof VmpmError && /line \d+ is malformed: ".*prio x/.test(e.message));
  assert.throws(() => parseMtreeFlat('unknown command: \'info mtre\'\r\n'), (e: unknown) => e instanceof VmpmError && /no "FlatView #n" section.*unknown command/.test(e.message));
  assert.throws(() => parseMtreeFlat(''), (e: unknown) => e instanceof VmpmError && /empty output/.test(e.message));
  const backwards = 'FlatView #0\r\n AS "memory", root: system\r\n  0000000000002000-0000000000001fff (prio 0, ram): r\r\n';
  assert.throws(() => parseMtreeFlat(backwards), (e: unknown) => e instanceof VmpmError && /ends before it starts/.test(e.message));
});
