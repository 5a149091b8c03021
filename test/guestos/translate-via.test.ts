import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bufferPhysicalMemory, Vmcoreinfo } from '../../src/guestos';
import { vcpuAddressSpace } from '../../src/guestos/linux/address-space';
import { buildTranslate } from '../../src/analysis';
import { formatTranslate } from '../../src/cli/commands/translate';
import type { CpuState } from '../../src/bundle/schema';

/**
 * `vmpm translate` names whose page tables it walked. On aarch64 under QEMU 7.2 (no TTBR1_EL1 in the
 * capture) the root is the kernel's swapper_pg_dir from VMCOREINFO: not vCPU 0's register, so the
 * output must not say "via vCPU 0". With TTBR1_EL1 captured, it is the vCPU's.
 */
const TABLE = 3n;
const PAGE = 3n | (1n << 10n);
const KIMAGE_VOFFSET = 0xffff_7fff_c000_0000n;
const VIRT = 0xffff_0000_1234_5678n;
const i = (s: bigint): bigint => (VIRT >> s) & 0x1ffn;

function memory() {
  const data = Buffer.alloc(2 << 20);
  for (const [addr, value] of [
    [0x1000n + i(39n) * 8n, 0x2000n | TABLE],
    [0x2000n + i(30n) * 8n, 0x3000n | TABLE],
    [0x3000n + i(21n) * 8n, 0x4000n | TABLE],
    [0x4000n + i(12n) * 8n, 0x5000n | PAGE],
  ] as const) data.writeBigUInt64LE(value, Number(addr));
  return bufferPhysicalMemory('test-ram', [{ start: 0n, data }]);
}

const info = Vmcoreinfo.parse(
  [`SYMBOL(swapper_pg_dir)=${(KIMAGE_VOFFSET + 0x1000n).toString(16)}`, `NUMBER(kimage_voffset)=0x${KIMAGE_VOFFSET.toString(16)}`, 'NUMBER(VA_BITS)=48', ''].join('\n'),
);

function view(cpus: CpuState[]) {
  const mem = memory();
  return {
    memory: mem,
    cpu: (index?: number) => cpus.find((c) => c.index === (index ?? 0))!,
    space: (index?: number) => vcpuAddressSpace(mem, cpus.find((c) => c.index === (index ?? 0))!, info),
  };
}

const arm = (index: number, registers: Record<string, `0x${string}`> = {}): CpuState => ({ index, arch: 'aarch64', mode: 'EL1h', registers: { pc: '0x0', ...registers }, raw: '' });

test('aarch64 without TTBR1_EL1: the walk is the kernel\'s swapper_pg_dir, and the output does not call it vCPU 0\'s', async () => {
  const m = await buildTranslate(view([arm(0), arm(1)]), VIRT, 1);
  assert.equal(m.physical, '0x5678');
  assert.equal(m.cpu, 1);
  assert.equal(m.via, "the kernel's page tables, not a vCPU's");
  const text = formatTranslate(m);
  assert.match(text, /^0xffff000012345678 via the kernel's page tables, not a vCPU's: aarch64 4K granule, 48-bit VA, 4 levels, root 0x1000 \(swapper_pg_dir 0xffff7fffc0001000 = physical 0x1000 \(VMCOREINFO/);
  assert.doesNotMatch(text, /via vCPU/);
});

test('aarch64 with TTBR1_EL1 captured: the walk is that vCPU\'s', async () => {
  const m = await buildTranslate(view([arm(0, { ttbr1_el1: '0x1000' })]), VIRT);
  assert.equal(m.via, 'vCPU 0');
  assert.match(formatTranslate(m), /^0xffff000012345678 via vCPU 0: aarch64 4K granule, 48-bit VA, 4 levels, root 0x1000 \(vCPU 0 ttbr1_el1 0x1000\)/);
});
