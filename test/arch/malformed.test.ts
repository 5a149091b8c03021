import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInfoRegisters } from '../../src/arch';
import { VmpmError } from '../../src/util/errors';
import { hmpFixture } from './fixtures';

/** Asserts a one-line VmpmError whose message matches `pattern`. */
function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VmpmError, `expected VmpmError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

const REAL = hmpFixture('x86-real-and-protected-smp2.txt');

test('a corrupted hex value is rejected with the CPU, the line number and the line', () => {
  rejects(
    () => parseInfoRegisters(REAL.replace('EBX=badc0de5', 'EBX=badc0dez'), 'x86_64'),
    /CPU#0 line 2 is malformed: "EAX=c0ffee01 EBX=badc0dez/,
  );
});

test('a truncated segment line, GDT line, FPR pair or XMM pair is rejected, naming the line', () => {
  rejects(() => parseInfoRegisters(REAL.replace('CS =0000 00000000 0000ffff 00009b00', 'CS =0000 00000000'), 'x86_64'), /CPU#0 line 6 .*"CS =0000 00000000"/);
  rejects(() => parseInfoRegisters(REAL.replace('IDT=     00000000 000003ff', 'IDT=     00000000'), 'x86_64'), /line 14 .*IDT/);
  rejects(() => parseInfoRegisters(REAL.replace('FPR0=0000000000000000 0000 FPR1', 'FPR0=0000000000000000 FPR1'), 'x86_64'), /FPR0=/);
  rejects(() => parseInfoRegisters(REAL.replace('XMM00=0000000000000000 0000000000000000', 'XMM00=00000000'), 'x86_64'), /XMM00=/);
});

test('a value wider than its register is rejected', () => {
  rejects(() => parseInfoRegisters(REAL.replace('EAX=c0ffee01', 'EAX=1c0ffee01c0ffee01'), 'x86_64'), /not a 32-bit hex value/);
});

test('a block without the EIP/RIP line is incomplete and rejected', () => {
  const text = REAL.split('\r\n').filter((l) => !l.startsWith('EIP=')).join('\r\n');
  rejects(() => parseInfoRegisters(text, 'x86_64'), /CPU#0 has no RIP value/);
});

test('HMP error text instead of registers is rejected with its first line', () => {
  rejects(
    () => parseInfoRegisters('registers: unsupported option -z\r\nTry "help info registers" for more information\r\n', 'x86_64'),
    /no "CPU#<n>" block.*registers: unsupported option -z/,
  );
  rejects(() => parseInfoRegisters('', 'x86_64'), /empty output/);
});

test('text before the first CPU block and a CPU printed twice are rejected', () => {
  rejects(() => parseInfoRegisters(`garbage\r\n${REAL}`, 'x86_64'), /before the first CPU block: "garbage"/);
  rejects(() => parseInfoRegisters(`${REAL}\r\nCPU#0\r\n`, 'x86_64'), /CPU#0 appears twice/);
});

test('aarch64: a malformed PSTATE line, a missing PSTATE and a bad Q pair are rejected', () => {
  const arm = hmpFixture('aarch64-linux-panic-fpu.txt');
  rejects(() => parseInfoRegisters(arm.replace('PSTATE=600003c5 -ZC- EL1h', 'PSTATE=600003c5 -ZC- EL9h'), 'aarch64'), /line 13 is malformed: "PSTATE=/);
  const noPstate = arm.split('\r\n').filter((l) => !l.startsWith('PSTATE=')).join('\r\n');
  rejects(() => parseInfoRegisters(noPstate, 'aarch64'), /CPU#0 has no PSTATE line/);
  rejects(() => parseInfoRegisters(arm.replace('Q00=0000000000000000:0000000000000000', 'Q00=00:00'), 'aarch64'), /Q00=00:00/);
  rejects(() => parseInfoRegisters(arm.replace(' PC=ffffd78bb0a26ae8', ' PC=ffffd78bb0a26ae8!'), 'aarch64'), /line 2 is malformed/);
});

test('a hostile, very long line is quoted shortened in the error', () => {
  const long = `EAX=${'z'.repeat(100000)}`;
  assert.throws(
    () => parseInfoRegisters(REAL.replace('EAX=c0ffee01', long), 'x86_64'),
    (err: unknown) => err instanceof VmpmError && err.message.length < 400,
  );
});
