/**
 * The aarch64 path of export/import on a synthetic bundle with known registers (x0..x30, sp, pc,
 * pstate, q0..q31, fpsr, fpcr) and unique pages at the virt board's RAM base: the ELF is EM_AARCH64
 * with NT_PRSTATUS + NT_PRFPREG per vCPU (readelf agrees), and import(export(B)) gives B's pages and
 * registers back, for elf and kdump.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CpuState } from '../../src/bundle/schema';
import { toHex } from '../../src/util/hex';
import { buildBundle, tempDir } from '../../bench/lib/build-bundle';
import { hasTool } from '../helpers/requirements';
import { diffCounts, tool, vmpm, vmpmJson } from './tools';

const t = tempDir('vmpm-interop-a64-');
after(() => t.cleanup());

function a64Cpu(index: number): CpuState {
  const registers: Record<string, `0x${string}`> = {};
  for (let i = 0; i < 31; i++) registers[`x${i}`] = toHex(0x1000n * BigInt(index + 1) + BigInt(i) * 0x0101010101n);
  registers.sp = toHex(0xffff800008003f00n + BigInt(index));
  registers.pc = toHex(0xffff8000080a1234n + BigInt(index) * 4n);
  registers.pstate = '0x600003c5';
  for (let i = 0; i < 32; i++) registers[`q${i}`] = toHex((0xfedcba9876543210n << 64n) | BigInt(i * 17 + index));
  registers.fpsr = '0x8000010';
  registers.fpcr = '0x3000000';
  return { index, arch: 'aarch64', mode: 'el1h', exceptionLevel: 1, registers, raw: '' };
}

describe('aarch64 export and import', () => {
  it('EM_AARCH64 core with prstatus and fpregs per vCPU; elf and kdump round trips keep pages and registers', { timeout: 60_000 }, async () => {
    const bundle = t.path('a64.vmpm');
    await buildBundle(bundle, { arch: 'aarch64', cpus: [a64Cpu(0), a64Cpu(1)], ranges: [{ start: 0x40000000n, length: 0x200000n, unique: true }] });
    await vmpm(['export', bundle, '--format', 'elf', '-o', t.path('a64.elf')]);
    if (hasTool('readelf')) {
      const r = await tool('readelf', ['-h', '-n', t.path('a64.elf')]);
      assert.match(r.stdout, /Machine:\s+AArch64/);
      assert.equal((r.stdout.match(/NT_PRSTATUS/g) ?? []).length, 2);
      assert.equal((r.stdout.match(/NT_FPREGSET|NT_PRFPREG/g) ?? []).length, 2);
    }
    await vmpm(['export', bundle, '--format', 'kdump', '-o', t.path('a64.kdump')]);
    const original = await vmpmJson<{ cpus: Array<{ index: number; registers: Record<string, string> }> }>(['regs', bundle]);
    for (const format of ['elf', 'kdump']) {
      const back = t.path(`back-${format}.vmpm`);
      const r = await vmpmJson<{ arch: string; cpus: number }>(['import', t.path(`a64.${format}`), '-o', back]);
      assert.equal(r.arch, 'aarch64');
      assert.equal(r.cpus, 2);
      assert.deepEqual(await diffCounts(bundle, back), { changedPages: 0, addedPages: 0, removedPages: 0, unchangedPages: 512 });
      const regs = await vmpmJson<{ cpus: Array<{ index: number; mode: string; registers: Record<string, string> }> }>(['regs', back]);
      for (const cpu of original.cpus) {
        const other = regs.cpus.find((c) => c.index === cpu.index);
        assert.ok(other, `vCPU ${cpu.index}`);
        assert.equal(other.mode, 'el1h');
        for (const [name, value] of Object.entries(cpu.registers)) {
          assert.equal(other.registers[name] === undefined ? undefined : BigInt(other.registers[name]!), BigInt(value), `${format} vCPU ${cpu.index} ${name}`);
        }
      }
    }
  });
});
