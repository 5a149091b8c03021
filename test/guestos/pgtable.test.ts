/**
 * Page walks on hand-built page tables with known answers (x86-64 4- and 5-level, 4 KiB / 2 MiB /
 * 1 GiB pages; aarch64 4K granule, 3 and 4 levels, blocks and pages), and hostile tables: loops,
 * entries pointing outside RAM, reserved encodings. Each hostile case is one clear error, fast. The
 * last test runs the real CLI on a bundle whose page tables loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferPhysicalMemory } from '../../src/guestos';
import { NotMappedError, PageTableError } from '../../src/guestos/linux/pgtable';
import { translateX86_64, type X86PagingRegs } from '../../src/guestos/linux/pgtable-x86_64';
import { translateAarch64 } from '../../src/guestos/linux/pgtable-aarch64';
import { planVirtualRead, readVirtual, x86AddressSpace } from '../../src/guestos/linux/vmem';
import { buildBundle, tempDir, x86Cpu } from '../../bench/lib/build-bundle';
import { runCli } from '../helpers/cli';

const P = 1n;
const RW = 2n;
const US = 4n;
const PS = 0x80n;
const NX = 1n << 63n;
const LONG: Omit<X86PagingRegs, 'cr3'> = { cr0: 0x80050033n, cr4: 0x6f0n, efer: 0xd01n };

/** 2 MiB of RAM at 0 with 64-bit entries written at given physical addresses. */
function ram(entries: Array<[bigint, bigint]>, size = 2 << 20): { mem: ReturnType<typeof bufferPhysicalMemory>; data: Buffer } {
  const data = Buffer.alloc(size);
  for (const [addr, value] of entries) data.writeBigUInt64LE(value, Number(addr));
  return { mem: bufferPhysicalMemory('test-ram', [{ start: 0n, data }]), data };
}
const idx = (virt: bigint, shift: bigint) => (virt >> shift) & 0x1ffn;

test('x86-64 4-level: a 4 KiB page, with every level and the effective permissions', async () => {
  const virt = 0xffff_8880_1234_5678n;
  const { mem } = ram([
    [0x1000n + idx(virt, 39n) * 8n, 0x2000n | P | RW],
    [0x2000n + idx(virt, 30n) * 8n, 0x3000n | P | RW | US],
    [0x3000n + idx(virt, 21n) * 8n, 0x4000n | P | RW],
    [0x4000n + idx(virt, 12n) * 8n, 0x17_5000n | P | NX | 0x60n],
  ]);
  const t = await translateX86_64(mem, { ...LONG, cr3: 0x1000n }, virt);
  assert.equal(t.mode, 'x86-64 4-level');
  assert.deepEqual(t.levels.map((l) => [l.name, l.index, l.present, l.leaf]), [
    ['pgd', Number(idx(virt, 39n)), true, false],
    ['pud', Number(idx(virt, 30n)), true, false],
    ['pmd', Number(idx(virt, 21n)), true, false],
    ['pte', Number(idx(virt, 12n)), true, true],
  ]);
  assert.equal(t.phys, 0x17_5678n);
  assert.equal(t.pageSize, 4096n);
  assert.deepEqual([t.writable, t.user, t.noExecute], [false, false, true]);
  assert.deepEqual(t.levels[3]!.flags, ['P', 'A', 'D', 'NX']);
});

test('x86-64: 2 MiB and 1 GiB pages end the walk early; bit 12 of a large page is PAT, not address', async () => {
  const v2m = 0xffff_ffff_8123_4567n;
  const v1g = 0xffff_8880_4567_89abn;
  const { mem } = ram([
    [0x1000n + idx(v2m, 39n) * 8n, 0x2000n | P | RW],
    [0x2000n + idx(v2m, 30n) * 8n, 0x3000n | P | RW],
    [0x3000n + idx(v2m, 21n) * 8n, 0x0a00_0000n | 0x1000n | P | PS],
    [0x1000n + idx(v1g, 39n) * 8n, 0x4000n | P | RW],
    [0x4000n + idx(v1g, 30n) * 8n, 0x1_4000_0000n | P | RW | PS | NX],
  ]);
  const a = await translateX86_64(mem, { ...LONG, cr3: 0x1000n }, v2m);
  assert.equal(a.levels.length, 3);
  assert.equal(a.pageSize, 2n << 20n);
  assert.equal(a.phys, 0x0a00_0000n + (v2m & 0x1f_ffffn));
  const b = await translateX86_64(mem, { ...LONG, cr3: 0x1000n }, v1g);
  assert.equal(b.levels.length, 2);
  assert.equal(b.pageSize, 1n << 30n);
  assert.equal(b.phys, 0x1_4000_0000n + (v1g & 0x3fff_ffffn));
  assert.deepEqual([b.writable, b.noExecute], [true, true]);
});

test('x86-64 5-level (CR4.LA57): five levels, 57-bit canonical addresses', async () => {
  const virt = 0xff11_2233_4455_6000n;
  const { mem } = ram([
    [0x1000n + idx(virt, 48n) * 8n, 0x2000n | P | RW],
    [0x2000n + idx(virt, 39n) * 8n, 0x3000n | P | RW],
    [0x3000n + idx(virt, 30n) * 8n, 0x4000n | P | RW],
    [0x4000n + idx(virt, 21n) * 8n, 0x5000n | P | RW],
    [0x5000n + idx(virt, 12n) * 8n, 0x9000n | P | RW],
  ]);
  const t = await translateX86_64(mem, { ...LONG, cr4: LONG.cr4 | (1n << 12n), cr3: 0x1000n }, virt);
  assert.equal(t.mode, 'x86-64 5-level');
  assert.deepEqual(t.levels.map((l) => l.name), ['pgd', 'p4d', 'pud', 'pmd', 'pte']);
  assert.equal(t.phys, 0x9000n);
  await assert.rejects(translateX86_64(mem, { ...LONG, cr3: 0x1000n }, virt), /not a canonical 48-bit/);
});

test('x86-64: a not-present level is reported, not an error; the virtual reader names it', async () => {
  const { mem } = ram([]);
  const t = await translateX86_64(mem, { ...LONG, cr3: 0x1000n }, 0x7000n);
  assert.equal(t.phys, undefined);
  assert.deepEqual(t.notPresent, { level: 'pgd', entryAddr: 0x1000n, entry: 0n });
  await assert.rejects(readVirtual(mem, x86AddressSpace(mem, { ...LONG, cr3: 0x1000n }, 'test'), 0x7000n, 8), (err: unknown) => {
    assert.ok(err instanceof NotMappedError);
    assert.equal((err as Error).message, 'virtual address 0x7000 is not mapped: the pgd entry at physical 0x1000 is not present (0x0)');
    return true;
  });
});

test('x86-64 hostile tables: a loop, an entry outside RAM, a reserved NX bit, no paging: one clear error each, fast', async () => {
  const virt = 0xffff_8880_0000_0000n;
  const started = performance.now();
  const loop = ram([[0x1000n + idx(virt, 39n) * 8n, 0x1000n | P | RW]]).mem;
  await assert.rejects(translateX86_64(loop, { ...LONG, cr3: 0x1000n }, virt), (e: unknown) => e instanceof PageTableError && /^page-table loop while translating 0xffff888000000000: the pgd entry points back to the table at physical 0x1000/.test((e as Error).message));
  const deeper = ram([
    [0x1000n + idx(virt, 39n) * 8n, 0x2000n | P],
    [0x2000n + idx(virt, 30n) * 8n, 0x1000n | P],
  ]).mem;
  await assert.rejects(translateX86_64(deeper, { ...LONG, cr3: 0x1000n }, virt), /page-table loop .* the pud entry points back to the table at physical 0x1000/);
  const outside = ram([[0x1000n + idx(virt, 39n) * 8n, 0xdead_beef_f000n | P]]).mem;
  await assert.rejects(translateX86_64(outside, { ...LONG, cr3: 0x1000n }, virt), /^PageTableError: pud table at physical 0xdeadbeeff000 is not in captured RAM of test-ram/);
  const reserved = ram([[0x1000n + idx(virt, 39n) * 8n, 0x2000n | P | NX]]).mem;
  await assert.rejects(translateX86_64(reserved, { ...LONG, efer: 0x500n, cr3: 0x1000n }, virt), /sets bit 63 while EFER.NXE is off/);
  await assert.rejects(translateX86_64(reserved, { cr0: 0x11n, cr4: 0n, efer: 0n, cr3: 0x1000n }, virt), /not in 64-bit long mode with paging/);
  await assert.rejects(translateX86_64(ram([]).mem, { ...LONG, cr3: 0x7fff_f000n }, virt), /pgd table at physical 0x7ffff000 is not in captured RAM/);
  assert.ok(performance.now() - started < 1000);
});

test('virtual reads cross pages that are scattered in physical memory', async () => {
  const base = 0x40_0000n;
  const { mem, data } = ram([
    [0x1000n, 0x2000n | P | RW | US],
    [0x2000n, 0x3000n | P | RW | US],
    [0x3000n + idx(base, 21n) * 8n, 0x4000n | P | RW | US],
    [0x4000n + idx(base, 12n) * 8n, 0x9000n | P | US],
    [0x4000n + idx(base + 0x1000n, 12n) * 8n, 0x7000n | P | US],
  ]);
  data.fill(0xaa, 0x9000, 0xa000);
  data.fill(0xbb, 0x7000, 0x8000);
  const space = x86AddressSpace(mem, { ...LONG, cr3: 0x1000n }, 'test');
  const runs = await planVirtualRead(space, base + 0xff8n, 16n, 1n << 20n);
  assert.deepEqual(runs, [
    { virt: base + 0xff8n, phys: 0x9ff8n, length: 8 },
    { virt: base + 0x1000n, phys: 0x7000n, length: 8 },
  ]);
  assert.deepEqual(await readVirtual(mem, space, base + 0xff8n, 16), Buffer.from('aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb', 'hex'));
  await assert.rejects(readVirtual(mem, space, base + 0x1ff8n, 16), /virtual address 0x402000 is not mapped: the pte entry at physical 0x4010 is not present/);
});

test('aarch64 4K granule: TTBR1 walk with 48-bit and 39-bit VA, blocks and pages; hostile descriptors', async () => {
  const TABLE = 3n;
  const PAGE = 3n | (1n << 10n);
  const BLOCK = 1n | (1n << 10n);
  const v = 0xffff_0000_1234_5678n;
  const i = (s: bigint) => (v >> s) & 0x1ffn;
  const { mem } = ram([
    [0x1000n + i(39n) * 8n, 0x2000n | TABLE],
    [0x2000n + i(30n) * 8n, 0x3000n | TABLE],
    [0x3000n + i(21n) * 8n, 0x4000n | TABLE],
    [0x4000n + i(12n) * 8n, 0x4000_5000n | PAGE | (1n << 7n) | (1n << 54n)],
  ]);
  const t = await translateAarch64(mem, { table: 0x1000n, vaBits: 48, source: 'test' }, v);
  assert.equal(t.mode, 'aarch64 4K granule, 48-bit VA, 4 levels');
  assert.deepEqual(t.levels.map((l) => l.name), ['pgd', 'pud', 'pmd', 'pte']);
  assert.equal(t.phys, 0x4000_5678n);
  assert.deepEqual([t.writable, t.user, t.noExecute], [false, false, false]);
  assert.deepEqual(t.levels[3]!.flags, ['PAGE', 'AF', 'AP[2]=RO', 'UXN']);
  // 39-bit VA: 3 levels starting at level 1; a 2 MiB block at level 2.
  const v39 = 0xffff_ff80_0060_1234n;
  const j = (s: bigint) => (v39 >> s) & 0x1ffn;
  const b = ram([
    [0x1000n + j(30n) * 8n, 0x2000n | TABLE],
    [0x2000n + j(21n) * 8n, 0x4060_0000n | BLOCK | (1n << 53n)],
  ]).mem;
  const t39 = await translateAarch64(b, { table: 0x1000n, vaBits: 39, source: 'test' }, v39);
  assert.deepEqual(t39.levels.map((l) => l.name), ['pud', 'pmd']);
  assert.equal(t39.pageSize, 2n << 20n);
  assert.equal(t39.phys, 0x4060_0000n + (v39 & 0x1f_ffffn));
  assert.equal(t39.noExecute, true);
  await assert.rejects(translateAarch64(b, { table: 0x1000n, vaBits: 39, source: 'test' }, 0xffff_0000_0000_0000n), /outside both 39-bit halves/);
  // Hostile: a block at level 0, a self-referencing table, a table outside RAM.
  await assert.rejects(translateAarch64(ram([[0x1000n + i(39n) * 8n, 0x2000n | 1n]]).mem, { table: 0x1000n, vaBits: 48, source: 't' }, v), /pgd \(level 0\) descriptor 0x2001 .* reserved encoding/);
  await assert.rejects(translateAarch64(ram([[0x1000n + i(39n) * 8n, 0x1000n | TABLE]]).mem, { table: 0x1000n, vaBits: 48, source: 't' }, v), /page-table loop/);
  await assert.rejects(translateAarch64(ram([[0x1000n + i(39n) * 8n, 0xffff_ffff_f000n | TABLE]]).mem, { table: 0x1000n, vaBits: 48, source: 't' }, v), /pud table at physical 0xfffffffff000 is not in captured RAM/);
});

test('vmpm translate and read --virt on a bundle whose page tables loop: one line, exit 1', async () => {
  const t = tempDir('vmpm-pgtable-');
  try {
    const path = t.path('loop.vmpm');
    const virt = 0xffff_8880_0000_0000n;
    const entry = Buffer.alloc(8);
    entry.writeBigUInt64LE(0x10_0000n | P | RW);
    await buildBundle(path, {
      cpus: [x86Cpu(0, { cr0: 0x80050033n, cr3: 0x10_0000n, cr4: 0x6f0n, efer: 0xd01n }, 'long')],
      patches: [{ addr: 0x10_0000n + idx(virt, 39n) * 8n, bytes: entry }],
    });
    for (const args of [['translate', path, `0x${virt.toString(16)}`], ['read', path, '--virt', `0x${virt.toString(16)}`, '--length', '16']]) {
      const r = await runCli(args, { timeoutMs: 20_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^vmpm: page-table loop while translating 0xffff888000000000: the pgd entry points back to the table at physical 0x100000 \(level 1 of this walk\)\n$/);
    }
  } finally {
    t.cleanup();
  }
});

test('x86-64 with PTI: a kernel address missing from the user half of the pgd pair is walked from the kernel half', async () => {
  const kernel = 0xffff_8880_0000_0000n;
  const user = 0x40_0000n;
  // Kernel pgd at 0x2000, user pgd at 0x3000 (the 8 KiB pair); the user half maps only user space.
  const { mem } = ram([
    [0x2000n + idx(kernel, 39n) * 8n, 0x5000n | P | RW],
    [0x5000n + idx(kernel, 30n) * 8n, 0x4000_0000n | P | RW | PS],
    [0x3000n + idx(user, 39n) * 8n, 0x6000n | P | RW | US],
    [0x6000n + idx(user, 30n) * 8n, 0x8000_0000n | P | RW | US | PS],
  ]);
  const space = x86AddressSpace(mem, { ...LONG, cr3: 0x3000n | 0x5n }, 'vCPU 0 cr3 0x3005');
  const k = await space.translate(kernel + 0x123n);
  assert.equal(k.phys, 0x4000_0123n);
  assert.match(k.root.source, /PTI kernel half 0x2000 \(CR3 holds the user half\)/);
  const u = await space.translate(user + 0x10n);
  assert.equal(u.phys, 0x8040_0010n);
  assert.equal(u.root.source, 'vCPU 0 cr3 0x3005');
  // Without bit 12 in CR3 nothing is retried: an unmapped kernel address stays unmapped.
  const plain = await x86AddressSpace(mem, { ...LONG, cr3: 0x5000n }, 'x').translate(0xffff_9000_0000_0000n);
  assert.equal(plain.phys, undefined);
});
