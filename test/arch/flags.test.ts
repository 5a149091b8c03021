import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRegisterFlags, parseInfoRegisters } from '../../src/arch';
import type { Hex } from '../../src/util/hex';
import { hmpFixture } from './fixtures';

const x86 = (registers: Record<string, Hex>) => decodeRegisterFlags({ arch: 'x86_64', mode: 'long', registers });
const byRegister = (list: ReturnType<typeof decodeRegisterFlags>) => Object.fromEntries(list.map((d) => [d.register, d]));

test('every named RFLAGS bit decodes by name, IOPL as a 2-bit field, reserved bit 1 is not reported', () => {
  const names = ['CF', 'PF', 'AF', 'ZF', 'SF', 'TF', 'IF', 'DF', 'OF', 'NT', 'RF', 'VM', 'AC', 'VIF', 'VIP', 'ID'];
  const bits = [0, 2, 4, 6, 7, 8, 9, 10, 11, 14, 16, 17, 18, 19, 20, 21];
  names.forEach((name, i) => {
    const [d] = x86({ rflags: `0x${((1 << bits[i]!) | 2).toString(16)}` });
    assert.deepEqual(d!.set, [name], `bit ${bits[i]}`);
  });
  const [all] = x86({ rflags: '0x3f7fd7' });
  assert.deepEqual(all!.set, [...names, 'IOPL=3']);
  assert.equal(all!.text, `${names.join(' ')} IOPL=3`);
  const [iopl0] = x86({ rflags: '0x2' });
  assert.deepEqual(iopl0!.set, []);
  assert.equal(iopl0!.text, 'IOPL=0');
});

test('every named CR0, CR4 and EFER bit decodes by name', () => {
  const cases: Array<[string, Array<[number, string]>]> = [
    ['cr0', [[0, 'PE'], [1, 'MP'], [2, 'EM'], [3, 'TS'], [4, 'ET'], [5, 'NE'], [16, 'WP'], [18, 'AM'], [29, 'NW'], [30, 'CD'], [31, 'PG']]],
    ['cr4', [[0, 'VME'], [1, 'PVI'], [2, 'TSD'], [3, 'DE'], [4, 'PSE'], [5, 'PAE'], [6, 'MCE'], [7, 'PGE'], [8, 'PCE'],
      [9, 'OSFXSR'], [10, 'OSXMMEXCPT'], [11, 'UMIP'], [12, 'LA57'], [13, 'VMXE'], [14, 'SMXE'], [16, 'FSGSBASE'],
      [17, 'PCIDE'], [18, 'OSXSAVE'], [20, 'SMEP'], [21, 'SMAP'], [22, 'PKE']]],
    ['efer', [[0, 'SCE'], [8, 'LME'], [10, 'LMA'], [11, 'NXE'], [12, 'SVME'], [13, 'LMSLE'], [14, 'FFXSR'], [15, 'TCE']]],
  ];
  for (const [register, bits] of cases) {
    for (const [bit, name] of bits) {
      const d = byRegister(x86({ [register]: `0x${(1n << BigInt(bit)).toString(16)}` as Hex }))[register];
      assert.deepEqual(d!.set, [name], `${register} bit ${bit}`);
    }
  }
});

test('known answers from a real Linux guest: CR0 0x80050033, CR4 0x6f0, EFER 0xd01, RFLAGS 0x93', () => {
  const [cpu] = parseInfoRegisters(hmpFixture('x86-linux-panic-smp2.txt'), 'x86_64');
  const d = byRegister(decodeRegisterFlags(cpu!));
  assert.deepEqual(Object.keys(d), ['rflags', 'cr0', 'cr4', 'efer']);
  assert.deepEqual(d.rflags!.set, ['CF', 'AF', 'SF']);
  assert.equal(d.rflags!.value, '0x93');
  assert.deepEqual(d.cr0!.set, ['PE', 'MP', 'ET', 'NE', 'WP', 'AM', 'PG']);
  assert.deepEqual(d.cr4!.set, ['PSE', 'PAE', 'MCE', 'PGE', 'OSFXSR', 'OSXMMEXCPT']);
  assert.deepEqual(d.efer!.set, ['SCE', 'LME', 'LMA', 'NXE']);
  assert.equal(d.efer!.text, 'SCE LME LMA NXE');
});

test('set bits without a name are reported as bit<n> instead of being dropped; nothing set reads (none)', () => {
  const d = byRegister(x86({ cr0: '0x80000041', efer: '0x0' }));
  assert.deepEqual(d.cr0!.set, ['PE', 'PG', 'bit6']);
  assert.equal(d.efer!.text, '(none)');
});

test('aarch64 PSTATE: N Z C V, D A I F, exception level and stack pointer selection', () => {
  const decode = (pstate: Hex) => decodeRegisterFlags({ arch: 'aarch64', mode: 'x', registers: { pstate } })[0]!;
  assert.deepEqual(decode('0x600003c5').set, ['Z', 'C', 'D', 'A', 'I', 'F', 'EL1', 'SP_EL1']);
  assert.equal(decode('0x600003c5').text, 'Z C D A I F EL1 SP_EL1 (EL1h)');
  assert.deepEqual(decode('0x90000000').set, ['N', 'V', 'EL0', 'SP_EL0']);
  assert.equal(decode('0x90000000').text, 'N V EL0 SP_EL0 (EL0t)');
  assert.deepEqual(decode('0x2000000c').set, ['C', 'EL3', 'SP_EL0']);
  assert.deepEqual(decode('0x400009').set, ['PAN', 'EL2', 'SP_EL2']);
});

test('aarch64 known answer from QEMU: PSTATE 0x400003c5 on the second virt vCPU is -Z-- EL1h', () => {
  const cpus = parseInfoRegisters(hmpFixture('aarch64-virt-smp2.txt'), 'aarch64');
  const [d] = decodeRegisterFlags(cpus[1]!);
  assert.equal(d!.register, 'pstate');
  assert.deepEqual(d!.set, ['Z', 'D', 'A', 'I', 'F', 'EL1', 'SP_EL1']);
});

test('unknown architectures decode no flags', () => {
  assert.deepEqual(decodeRegisterFlags({ arch: 'riscv64', mode: 'unknown', registers: { pc: '0x0' } }), []);
});
