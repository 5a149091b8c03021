import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInfoRegisters, registerGroups } from '../../src/arch';
import { hmpFixture } from './fixtures';

test('aarch64 virt with two vCPUs: pc, x0..x30, sp, pstate, EL1h, no FP registers while the FPU is disabled', () => {
  const cpus = parseInfoRegisters(hmpFixture('aarch64-virt-smp2.txt'), 'aarch64');
  assert.equal(cpus.length, 2);
  const cpu0 = cpus[0]!;
  assert.equal(cpu0.arch, 'aarch64');
  assert.equal(cpu0.mode, 'el1h');
  assert.equal(cpu0.exceptionLevel, 1);
  assert.equal(cpu0.halted, undefined);
  assert.equal(cpu0.registers.pc, '0x200');
  assert.equal(cpu0.registers.pstate, '0x3c5');
  assert.equal(cpu0.registers.sp, '0x0');
  assert.equal(cpu0.registers.x30, '0x0');
  assert.equal(Object.keys(cpu0.registers).length, 34);
  assert.equal(cpu0.registers.fpcr, undefined);
  assert.equal(cpus[1]!.registers.pstate, '0x400003c5');
});

test('a panicked arm64 Linux guest: kernel addresses, FPCR/FPSR and 128-bit Q registers (hi:lo)', () => {
  const cpus = parseInfoRegisters(hmpFixture('aarch64-linux-panic-fpu.txt'), 'aarch64');
  const [c0, c1] = cpus as [(typeof cpus)[0], (typeof cpus)[0]];
  assert.equal(c0.registers.pc, '0xffffd78bb0a26ae8');
  assert.equal(c0.registers.x3, '0xffffd78bb26be908');
  assert.equal(c0.registers.x30, '0xffffd78bb0a26adc');
  assert.equal(c0.registers.sp, '0xffff800008003f10');
  assert.equal(c0.registers.pstate, '0x600003c5');
  assert.equal(c0.registers.fpcr, '0x0');
  assert.equal(c0.registers.fpsr, '0x0');
  assert.equal(c0.registers.q1, '0x3ff0000000000000');
  assert.equal(c0.registers.q2, '0xff0000000000000000000000ccff0000');
  assert.equal(c0.registers.q31, '0x0');
  assert.equal(c1.mode, 'el1h');
  assert.equal(c1.registers.pstate, '0x80000005');
  assert.equal(c1.registers.x12, '0x7263206465726567');
});

test('registerGroups for aarch64: general, SP/PC/PSTATE, FP', () => {
  const [cpu] = parseInfoRegisters(hmpFixture('aarch64-linux-panic-fpu.txt'), 'aarch64');
  const groups = registerGroups(cpu!);
  assert.deepEqual(groups.map((g) => [g.title, g.names.length]), [['General', 31], ['SP, PC & PSTATE', 3], ['FP', 34]]);
  assert.deepEqual(groups[1]!.names, ['sp', 'pc', 'pstate']);
});

test('EL3-capable CPUs print the security state before the EL, e.g. "NS EL2h"; EL0 with SP_EL0 is el0t', () => {
  const base = hmpFixture('aarch64-virt-smp2.txt');
  const el2 = parseInfoRegisters(base.replace('PSTATE=000003c5 ---- EL1h', 'PSTATE=000003c9 ---- NS EL2h'), 'aarch64');
  assert.equal(el2[0]!.mode, 'el2h');
  assert.equal(el2[0]!.exceptionLevel, 2);
  const el0 = parseInfoRegisters(base.replace('PSTATE=000003c5 ---- EL1h', 'PSTATE=80000000 N--- EL0t'), 'aarch64');
  assert.equal(el0[0]!.mode, 'el0t');
  assert.equal(el0[0]!.exceptionLevel, 0);
});

test('a vCPU in AArch32 state (R00..R15, PSR) gets r0..r15, cpsr and the AArch32 mode name', () => {
  const text =
    '\r\nCPU#0\r\n' +
    'R00=00000001 R01=00000002 R02=00000003 R03=00000004\r\n' +
    'R04=00000005 R05=00000006 R06=00000007 R07=00000008\r\n' +
    'R08=00000009 R09=0000000a R10=0000000b R11=0000000c\r\n' +
    'R12=0000000d R13=8000fff0 R14=80001234 R15=80008000\r\n' +
    'PSR=600001d3 -ZC- A NS svc32\r\n';
  const [cpu] = parseInfoRegisters(text, 'aarch64');
  assert.equal(cpu!.mode, 'svc32');
  assert.equal(cpu!.exceptionLevel, 1);
  assert.equal(cpu!.registers.r15, '0x80008000');
  assert.equal(cpu!.registers.cpsr, '0x600001d3');
});
