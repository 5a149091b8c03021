/**
 * The parsers against live QEMU (TCG): the built-in known-answer guests are run until they panic (or
 * settle), then `info registers -a`, `info mtree -f` and the notes of a one-page `dump-guest-memory`
 * are parsed and checked against the guests' known answers and against each other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInfoRegisters } from '../../src/arch';
import type { ParsedCpuState } from '../../src/arch';
import { parseMtreeFlat, ramRanges } from '../../src/capture/parse/mtree';
import { compareRegisters, cpuRegistersFromNotes, parseElfNotes } from '../../src/formats/elf';
import { launchBootSectorGuest, BOOT_SECTOR_ANSWERS, type LaunchedQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { requireTools } from '../helpers/requirements';
import { launchAarch64Guest, launchLongModeGuest } from '../guest-extra/guests';
import { LONG_MODE_ANSWERS } from '../guest-extra/answers';
import { aarch64Answer } from '../guest-extra/aarch64-guest';

interface Observed {
  cpus: ParsedCpuState[];
  ram: ReturnType<typeof ramRanges>;
  notes: ReturnType<typeof cpuRegistersFromNotes>;
}

/** e_machine and the concatenated PT_NOTE segments of an ELF64 little-endian file. */
function elfNotes(file: Buffer): { machine: number; notes: Buffer } {
  assert.equal(file.readUInt32BE(0), 0x7f454c46, 'ELF magic');
  const phoff = Number(file.readBigUInt64LE(32));
  const phentsize = file.readUInt16LE(54);
  const parts: Buffer[] = [];
  for (let i = 0; i < file.readUInt16LE(56); i++) {
    const ph = phoff + i * phentsize;
    if (file.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const offset = Number(file.readBigUInt64LE(ph + 8));
    parts.push(file.subarray(offset, offset + Number(file.readBigUInt64LE(ph + 32))));
  }
  return { machine: file.readUInt16LE(18), notes: Buffer.concat(parts) };
}

async function observe(
  qemu: LaunchedQemu,
  arch: string,
  ramStart: bigint,
  settled: (client: QmpClient) => Promise<void>,
): Promise<Observed> {
  const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
  try {
    await client.execute('cont');
    await settled(client);
    await client.execute('stop');
    const cpus = parseInfoRegisters(await client.hmp('info registers -a'), arch);
    const ram = ramRanges(parseMtreeFlat(await client.hmp('info mtree -f')));
    const dumpFile = join(qemu.dir, 'page.elf');
    await client.execute('dump-guest-memory', { paging: false, protocol: `file:${dumpFile}`, begin: ramStart, length: 4096 });
    const { machine, notes } = elfNotes(readFileSync(dumpFile));
    return { cpus, ram, notes: cpuRegistersFromNotes(parseElfNotes(notes, true), machine) };
  } finally {
    await client.close();
  }
}

function assertNotesAgree(o: Observed): void {
  assert.equal(o.notes.length, o.cpus.length);
  for (const cpu of o.notes) {
    const hmp = o.cpus.find((c) => c.index === cpu.index);
    assert.ok(hmp, `CPU#${cpu.index} in info registers`);
    assert.deepEqual(compareRegisters(hmp.registers, cpu.registers), [], `CPU#${cpu.index}: notes vs info registers`);
  }
}


test('live x86 boot sector (2 vCPUs): known answers in real mode, RAM 0..64 MiB, dump notes agree', { skip: requireTools('qemu-system-x86_64'), timeout: 60_000 }, async () => {
  const qemu = await launchBootSectorGuest({ smp: 2, startPaused: true });
  try {
    const o = await observe(qemu, 'x86_64', 0n, (c) => c.waitForEvent('GUEST_PANICKED', { timeoutMs: 20_000 }).then(() => undefined));
    assert.equal(o.cpus.length, 2);
    const cpu0 = o.cpus[0]!;
    assert.equal(cpu0.mode, 'real');
    for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
      assert.equal(cpu0.registers[name], `0x${value.toString(16)}`, name);
    }
    assert.deepEqual(o.ram.map((r) => [r.name, r.start, r.end]), [['pc.ram', 0n, 0x4000000n]]);
    assertNotesAgree(o);
  } finally {
    await qemu.kill();
  }
});

test('live x86 long-mode guest: 64-bit known answers, mode long, dump notes agree', { skip: requireTools('qemu-system-x86_64'), timeout: 60_000 }, async () => {
  const qemu = await launchLongModeGuest({ startPaused: true });
  try {
    const o = await observe(qemu, 'x86_64', 0n, (c) => c.waitForEvent('GUEST_PANICKED', { timeoutMs: 20_000 }).then(() => undefined));
    const [cpu] = o.cpus;
    assert.equal(cpu!.mode, 'long');
    for (const [name, value] of Object.entries(LONG_MODE_ANSWERS.registers)) {
      assert.equal(cpu!.registers[name], `0x${value.toString(16)}`, name);
    }
    assertNotesAgree(o);
  } finally {
    await qemu.kill();
  }
});

test('live aarch64 virt guest: x0..x30 known answers, EL1h, RAM at 0x40000000, dump notes agree', { skip: requireTools('qemu-system-aarch64'), timeout: 60_000 }, async () => {
  const qemu = await launchAarch64Guest({ startPaused: true });
  try {
    const o = await observe(qemu, 'aarch64', 0x40000000n, async (c) => {
      // No panic device: wait until the last register the guest sets holds its answer.
      const deadline = Date.now() + 20_000;
      for (;;) {
        const [cpu] = parseInfoRegisters(await c.hmp('info registers'), 'aarch64');
        if (cpu!.registers.x30 === `0x${aarch64Answer(30).toString(16)}`) return;
        assert.ok(Date.now() < deadline, 'aarch64 guest did not reach its final state');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    const [cpu] = o.cpus;
    assert.equal(cpu!.mode, 'el1h');
    assert.equal(cpu!.exceptionLevel, 1);
    for (let n = 0; n <= 30; n++) assert.equal(cpu!.registers[`x${n}`], `0x${aarch64Answer(n).toString(16)}`, `x${n}`);
    assert.equal(o.ram[0]!.start, 0x40000000n);
    assertNotesAgree(o);
  } finally {
    await qemu.kill();
  }
});
