import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EM_386, EM_AARCH64, EM_X86_64, NT_PRFPREG, NT_PRSTATUS, compareRegisters, cpuRegistersFromNotes, decodePrstatus,
  decodeQemuCpuState, parseElfNotes, vmcoreinfoFromNotes,
} from '../../src/formats/elf';
import { parseInfoRegisters } from '../../src/arch';
import { VmpmError } from '../../src/util/errors';
import { hmpFixture } from '../arch/fixtures';
import { A64_NOTES_BASE64, LONG_NOTES_BASE64, REAL_NOTES_BASE64 } from '../arch/elf-note-samples';

const REAL = Buffer.from(REAL_NOTES_BASE64, 'base64');
const LONG = Buffer.from(LONG_NOTES_BASE64, 'base64');
const A64 = Buffer.from(A64_NOTES_BASE64, 'base64');

/** Builds one ELF note (4-byte aligned) the way QEMU and Linux do. */
function note(name: string, type: number, desc: Buffer, littleEndian = true): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  const header = Buffer.alloc(12);
  const w = (v: number, at: number) => (littleEndian ? header.writeUInt32LE(v, at) : header.writeUInt32BE(v, at));
  w(nameBytes.length, 0);
  w(desc.length, 4);
  w(type, 8);
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  return Buffer.concat([header, pad(nameBytes), pad(desc)]);
}

const isVmpmError = (pattern: RegExp) => (err: unknown) =>
  err instanceof VmpmError && pattern.test(err.message) && !err.message.includes('\n');

test('a real x86 real-mode dump (EM_386, 2 vCPUs): two i386 NT_PRSTATUS then two QEMU notes of 0x1b8 bytes', () => {
  const notes = parseElfNotes(REAL, true);
  assert.deepEqual(notes.map((n) => [n.name, n.type, n.desc.length]), [
    ['CORE', NT_PRSTATUS, 144], ['CORE', NT_PRSTATUS, 144], ['QEMU', 0, 0x1b8], ['QEMU', 0, 0x1b8],
  ]);
  const cpus = cpuRegistersFromNotes(notes, EM_386);
  assert.deepEqual(cpus.map((c) => c.index), [0, 1]);
  const r = cpus[0]!.registers;
  assert.deepEqual(
    [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp],
    ['0xc0ffee01', '0xbadc0de5', '0xc0c0c0c0', '0xd15c0505', '0x5151aaaa', '0xd1d1bbbb', '0xb0b0cafe', '0x7c00'],
  );
  assert.equal(cpus[0]!.prstatus.rax, '0xc0ffee01', 'the i386 NT_PRSTATUS alone has the known answers too');
  assert.equal(r['cs.limit'], '0xffff');
  assert.equal(r.cr0, '0x10');
});

test('every register in the notes equals `info registers` taken at the same moment (real mode, both vCPUs)', () => {
  const hmp = parseInfoRegisters(hmpFixture('x86-real-at-dump-smp2.txt'), 'x86_64');
  const cpus = cpuRegistersFromNotes(parseElfNotes(REAL, true), EM_386);
  for (const cpu of cpus) {
    const h = hmp.find((c) => c.index === cpu.index)!;
    const common = Object.keys(cpu.registers).filter((n) => h.registers[n] !== undefined);
    assert.ok(common.length >= 50, `CPU#${cpu.index}: ${common.length} registers compared`);
    assert.deepEqual(compareRegisters(h.registers, cpu.registers), [], `CPU#${cpu.index}`);
    assert.deepEqual(compareRegisters(cpu.prstatus, cpu.qemu!), [], 'NT_PRSTATUS agrees with the QEMU note');
  }
});

test('a real long-mode dump (EM_X86_64): 64-bit known answers, segments, CR3 and GDT, equal to `info registers`', () => {
  const notes = parseElfNotes(LONG, true);
  assert.deepEqual(notes.map((n) => [n.name, n.type, n.desc.length]), [['CORE', NT_PRSTATUS, 336], ['QEMU', 0, 0x1b8]]);
  const [cpu] = cpuRegistersFromNotes(notes, EM_X86_64);
  assert.equal(cpu!.index, 0);
  assert.equal(cpu!.prstatus.rbx, '0xbadc0de5badc0de5');
  assert.equal(cpu!.prstatus.r15, '0x1515151515151515');
  assert.equal(cpu!.prstatus.rsp, '0xffff800000007c00');
  assert.equal(cpu!.qemu!.cr3, '0x1000');
  assert.equal(cpu!.qemu!['cs.flags'], '0xaf9a00');
  const [h] = parseInfoRegisters(hmpFixture('x86-long-at-dump.txt'), 'x86_64');
  assert.deepEqual(compareRegisters(h!.registers, cpu!.registers), []);
  assert.equal(Object.keys(cpu!.registers).filter((n) => h!.registers[n] !== undefined).length, 58);
});

test('a real aarch64 dump: NT_PRSTATUS and NT_PRFPREG per vCPU, x0..x30/sp/pc/pstate equal to `info registers`', () => {
  const notes = parseElfNotes(A64, true);
  assert.deepEqual(notes.map((n) => [n.type, n.desc.length]), [[1, 392], [NT_PRFPREG, 528], [1, 392], [NT_PRFPREG, 528]]);
  const cpus = cpuRegistersFromNotes(notes, EM_AARCH64);
  assert.deepEqual(cpus.map((c) => c.index), [0, 1]);
  assert.equal(cpus[0]!.registers.x0, '0xa6400000c0de0000');
  assert.equal(cpus[0]!.registers.x10, '0xa640000ac0de000a');
  assert.equal(Object.keys(cpus[0]!.fp!).length, 34);
  const hmp = parseInfoRegisters(hmpFixture('aarch64-at-dump-smp2.txt'), 'aarch64');
  for (const cpu of cpus) {
    const h = hmp.find((c) => c.index === cpu.index)!;
    assert.equal(Object.keys(cpu.registers).filter((n) => h.registers[n] !== undefined).length, 34);
    assert.deepEqual(compareRegisters(h.registers, cpu.registers), []);
  }
});

test('compareRegisters reports each differing register present in both maps', () => {
  assert.deepEqual(compareRegisters({ rax: '0x1', rbx: '0x2', rcx: '0x3' }, { rax: '0x1', rbx: '0x5' }), [{ name: 'rbx', a: '0x2', b: '0x5' }]);
});

test('VMCOREINFO text is extracted from its note; absent gives undefined', () => {
  const text = 'OSRELEASE=6.1.0-57-amd64\nPAGESIZE=4096\nSYMBOL(prb)=ffffffff82a64400\n';
  const buf = Buffer.concat([note('CORE', 1, Buffer.alloc(336)), note('VMCOREINFO', 0, Buffer.from(`${text}\0`))]);
  const notes = parseElfNotes(buf, true);
  assert.equal(vmcoreinfoFromNotes(notes), text);
  assert.equal(vmcoreinfoFromNotes(parseElfNotes(REAL, true)), undefined);
});

test('big-endian notes parse with littleEndian=false; trailing zero padding is accepted', () => {
  const desc = Buffer.alloc(392);
  desc.writeUInt32BE(3, 32); // pr_pid: vCPU 2
  desc.writeBigUInt64BE(0x40200000n, 112 + 32 * 8); // pc
  const buf = Buffer.concat([note('CORE', NT_PRSTATUS, desc, false), Buffer.alloc(8)]);
  const notes = parseElfNotes(buf, false);
  assert.equal(notes.length, 1);
  const { pid, registers } = decodePrstatus(notes[0]!.desc, 'aarch64', false);
  assert.equal(pid, 3);
  assert.equal(registers.pc, '0x40200000');
  assert.equal(cpuRegistersFromNotes(notes, EM_AARCH64, false)[0]!.index, 2);
});

test('hostile buffers: a name or desc length past the end, a truncated header or trailing garbage are rejected', () => {
  const good = note('CORE', 1, Buffer.alloc(16));
  const withDescsz = (v: number) => { const b = Buffer.from(good); b.writeUInt32LE(v, 4); return b; };
  const withNamesz = (v: number) => { const b = Buffer.from(good); b.writeUInt32LE(v, 0); return b; };
  assert.throws(() => parseElfNotes(withDescsz(0xffffffff), true), isVmpmError(/note #0 at offset 0x0 has descsz 4294967295, past the end/));
  assert.throws(() => parseElfNotes(withDescsz(17), true), isVmpmError(/descsz 17, past the end of the 36-byte segment/));
  assert.throws(() => parseElfNotes(withNamesz(0x7fffffff), true), isVmpmError(/namesz 2147483647, past the end/));
  assert.throws(() => parseElfNotes(Buffer.concat([good, Buffer.from([1, 0, 0])]), true), isVmpmError(/truncated note header at offset 0x24/));
  assert.throws(() => parseElfNotes(REAL.subarray(0, REAL.length - 100), true), isVmpmError(/note #3 .*descsz 440, past the end/));
  assert.deepEqual(parseElfNotes(Buffer.alloc(0), true), []);
});

test('hostile descs: short NT_PRSTATUS, wrong QEMU note version or size, unknown machine are rejected', () => {
  assert.throws(() => decodePrstatus(Buffer.alloc(100), 'x86_64'), isVmpmError(/x86_64 NT_PRSTATUS note is 100 bytes, expected at least 328/));
  assert.throws(() => decodePrstatus(Buffer.alloc(10), 'i386'), isVmpmError(/i386 NT_PRSTATUS note is 10 bytes/));
  const qemu = parseElfNotes(LONG, true)[1]!.desc;
  const v2 = Buffer.from(qemu); v2.writeUInt32LE(2, 0);
  assert.throws(() => decodeQemuCpuState(v2), isVmpmError(/version 2, only version 1/));
  const big = Buffer.from(qemu); big.writeUInt32LE(0x10000000, 4);
  assert.throws(() => decodeQemuCpuState(big), isVmpmError(/declares size 0x10000000, expected 0x1b8/));
  assert.throws(() => decodeQemuCpuState(qemu.subarray(0, 0x100)), isVmpmError(/QEMU CPU state note is 256 bytes/));
  assert.throws(() => cpuRegistersFromNotes([], 8), isVmpmError(/e_machine 8 is not decoded/));
  const orphan = parseElfNotes(note('QEMU', 0, qemu), true);
  assert.throws(() => cpuRegistersFromNotes(orphan, EM_X86_64), isVmpmError(/no matching NT_PRSTATUS/));
});

test('random corruption of real note buffers only ever yields notes or a VmpmError, never another exception', () => {
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  for (const [buf, machine] of [[REAL, EM_386], [LONG, EM_X86_64], [A64, EM_AARCH64]] as const) {
    for (let i = 0; i < 500; i++) {
      const b = Buffer.from(buf);
      for (let k = 0; k < 1 + rand(4); k++) b[rand(b.length)] = rand(256);
      const cut = rand(3) === 0 ? b.subarray(0, rand(b.length)) : b;
      try {
        cpuRegistersFromNotes(parseElfNotes(cut, true), machine);
      } catch (err) {
        assert.ok(err instanceof VmpmError, `iteration ${i}: ${String(err)}`);
      }
    }
  }
});
