import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInfoRegisters, registerGroups } from '../../src/arch';
import { hmpFixture } from './fixtures';

test('the boot-sector guest in real mode gives its known answers zero-extended into the 64-bit names', () => {
  const [cpu0] = parseInfoRegisters(hmpFixture('x86-real-and-protected-smp2.txt'), 'x86_64');
  assert.ok(cpu0);
  assert.equal(cpu0.index, 0);
  assert.equal(cpu0.arch, 'x86_64');
  assert.equal(cpu0.mode, 'real');
  assert.equal(cpu0.halted, true);
  const r = cpu0.registers;
  assert.deepEqual(
    [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp],
    ['0xc0ffee01', '0xbadc0de5', '0xc0c0c0c0', '0xd15c0505', '0x5151aaaa', '0xd1d1bbbb', '0xb0b0cafe', '0x7c00'],
  );
  assert.equal(r.rip, '0x7c66');
  assert.equal(r.rflags, '0x46');
  assert.equal(r.cpl, '0x0');
  assert.equal(r.a20, '0x1');
  assert.equal(r.smm, '0x0');
  assert.equal(r['cs.selector'], '0x0');
  assert.equal(r['cs.limit'], '0xffff');
  assert.equal(r['cs.flags'], '0x9b00');
  assert.equal(r['ldtr.flags'], '0x8200');
  assert.equal(r['tr.flags'], '0x8b00');
  assert.equal(r['idt.limit'], '0x3ff');
  assert.equal(r['gdt.base'], '0x0');
  assert.equal(r.cr0, '0x10');
  assert.equal(r.dr6, '0xffff0ff0');
  assert.equal(r.dr7, '0x400');
  assert.equal(r.efer, '0x0');
  assert.equal(r.fcw, '0x37f');
  assert.equal(r.mxcsr, '0x1f80');
  assert.equal(r.st7, '0x0');
  assert.equal(r.xmm7, '0x0');
  assert.equal(r.xmm8, undefined, 'a 32-bit code segment shows only XMM0-7');
  assert.equal(r.r8, undefined, 'no R8-R15 outside 64-bit mode');
});

test('a second vCPU parked by SeaBIOS in protected mode is parsed from the same -a output, decoded suffixes ignored', () => {
  const cpus = parseInfoRegisters(hmpFixture('x86-real-and-protected-smp2.txt'), 'x86_64');
  assert.equal(cpus.length, 2);
  const cpu1 = cpus[1]!;
  assert.equal(cpu1.index, 1);
  assert.equal(cpu1.mode, 'protected');
  assert.equal(cpu1.registers.rip, '0xfd09a');
  assert.equal(cpu1.registers['cs.selector'], '0x8');
  assert.equal(cpu1.registers['cs.limit'], '0xffffffff');
  assert.equal(cpu1.registers['cs.flags'], '0xcf9b00');
  assert.equal(cpu1.registers['tr.flags'], '0x8b00');
  assert.equal(cpu1.registers['gdt.base'], '0xf6180');
  assert.equal(cpu1.registers['gdt.limit'], '0x37');
  assert.ok(cpu1.raw.includes('CS32 [-RA]'), 'the decoded text stays in raw');
});

test('long mode gives 64-bit values, R8-R15 despite the "R8 =" padding, 16 XMM registers and mode long', () => {
  const [cpu] = parseInfoRegisters(hmpFixture('x86-long-mode.txt'), 'x86_64');
  assert.ok(cpu);
  assert.equal(cpu.mode, 'long');
  assert.equal(cpu.halted, false);
  const r = cpu.registers;
  assert.equal(r.rbx, '0xbadc0de5badc0d0b');
  assert.equal(r.rcx, '0xc0c0c0c0c0c0c00c');
  assert.equal(r.r8, '0x808080808080808');
  assert.equal(r.r9, '0x909090909090909');
  assert.equal(r.r15, '0x1515151515151515');
  assert.equal(r.rip, '0xffff800000007d67');
  assert.equal(r.rsp, '0xffff800000007c00');
  assert.equal(r['cs.flags'], '0xaf9a00');
  assert.equal(r['gdt.base'], '0x7d70');
  assert.equal(r.cr0, '0x80000011');
  assert.equal(r.cr3, '0x1000');
  assert.equal(r.efer, '0x500');
  assert.equal(r.xmm15, '0x0');
});

test('a crashed Linux guest: per-vCPU values, 128-bit XMM with the high quad printed first, segment bases', () => {
  const cpus = parseInfoRegisters(hmpFixture('x86-linux-panic-smp2.txt'), 'x86_64');
  assert.deepEqual(cpus.map((c) => [c.index, c.mode, c.halted]), [[0, 'long', true], [1, 'long', false]]);
  const [c0, c1] = cpus as [(typeof cpus)[0], (typeof cpus)[0]];
  assert.equal(c0.registers.rip, '0xffffffffb9a3fc9b');
  assert.equal(c0.registers['gs.base'], '0xffff8b0c4f800000');
  assert.equal(c0.registers['tr.base'], '0xfffffe0000003000');
  assert.equal(c0.registers['tr.limit'], '0x4087');
  assert.equal(c0.registers.cr2, '0x5e4720');
  assert.equal(c0.registers.xmm0, '0x5e234300000000005e2343');
  assert.equal(c0.registers.xmm1, '0x4000000000000000');
  assert.equal(c1.registers.xmm4, '0xffffffffffffffff000000000000ff00');
  assert.equal(c1.registers['fs.base'], '0x3c44c3c0');
});

test('raw keeps each vCPU block verbatim: the blocks joined back give the exact QEMU text', () => {
  const text = hmpFixture('x86-linux-panic-smp2.txt');
  const cpus = parseInfoRegisters(text, 'x86_64');
  assert.equal(`\r\n${cpus.map((c) => c.raw).join('')}`, text);
  assert.ok(cpus[0]!.raw.startsWith('CPU#0\r\nRAX=0000000000000002'));
});

test('x87 FPRn values are 80-bit: the 16-bit sign/exponent above the 64-bit mantissa', () => {
  const text = hmpFixture('x86-long-mode.txt').replace(
    'FPR0=0000000000000000 0000 FPR1',
    'FPR0=c90fdaa22168c000 4000 FPR1',
  );
  const [cpu] = parseInfoRegisters(text, 'x86_64');
  assert.equal(cpu!.registers.st0, '0x4000c90fdaa22168c000');
});

test('AVX output (YMM lines) fills ymm and the xmm low halves; unknown lines are ignored but kept in raw', () => {
  const base = hmpFixture('x86-long-mode.txt');
  const xmmStart = base.indexOf('XMM00=');
  const ymm = Array.from({ length: 16 }, (_, i) => {
    const n = String(i).padStart(2, '0');
    return `YMM${n}=${'1'.repeat(16)} ${'2'.repeat(16)} ${'3'.repeat(16)} ${i.toString(16).padStart(16, '0')}\r\n`;
  }).join('');
  const text = `${base.slice(0, xmmStart)}PDPTR0=0000000000000000 PDPTR1=0000000000000000\r\nFUTURE LINE WITHOUT FIELDS\r\n${ymm}`;
  const [cpu] = parseInfoRegisters(text, 'x86_64');
  assert.equal(cpu!.registers.ymm5, '0x1111111111111111222222222222222233333333333333330000000000000005');
  assert.equal(cpu!.registers.xmm5, '0x33333333333333330000000000000005');
  assert.equal(cpu!.registers.pdptr0, undefined);
  assert.ok(cpu!.raw.includes('FUTURE LINE WITHOUT FIELDS'));
});

test('registerGroups lists the x86 groups in display order with only the registers present', () => {
  const [cpu] = parseInfoRegisters(hmpFixture('x86-long-mode.txt'), 'x86_64');
  const groups = registerGroups(cpu!);
  assert.deepEqual(groups.map((g) => g.title), [
    'General', 'Instruction pointer & flags', 'Segments', 'Descriptor tables', 'Control & debug', 'FPU & SSE',
  ]);
  assert.deepEqual(groups[0]!.names.slice(0, 4), ['rax', 'rbx', 'rcx', 'rdx']);
  assert.equal(groups[0]!.names.length, 16);
  assert.deepEqual(groups[1]!.names, ['rip', 'rflags', 'cpl', 'a20', 'smm']);
  assert.ok(groups[2]!.names.includes('ldtr.selector'));
  assert.equal(groups[5]!.names.filter((n) => n.startsWith('xmm')).length, 16);
  const listed = groups.flatMap((g) => g.names).sort();
  assert.deepEqual(listed, Object.keys(cpu!.registers).sort(), 'every register is shown exactly once');
});

test('registers no group knows about are shown in a trailing "Other" group', () => {
  const groups = registerGroups({ arch: 'x86_64', registers: { rax: '0x1', kernel_gs_base: '0x2' } });
  assert.deepEqual(groups, [
    { title: 'General', names: ['rax'] },
    { title: 'Other', names: ['kernel_gs_base'] },
  ]);
});

test('an unsupported target keeps raw text per vCPU with no registers', () => {
  const cpus = parseInfoRegisters('\r\nCPU#0\r\npc       0x80000000\r\n', 'riscv64');
  assert.deepEqual(cpus.map((c) => [c.index, c.mode, Object.keys(c.registers).length]), [[0, 'unknown', 0]]);
  assert.ok(cpus[0]!.raw.includes('pc       0x80000000'));
});
