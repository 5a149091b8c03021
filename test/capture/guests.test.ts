import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CpusSection, Manifest } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import type { QmpClient } from '../../src/qmp';
import { fromHex } from '../../src/util/hex';
import {
  AARCH64_LOAD_ADDR,
  AARCH64_MARKER,
  AARCH64_MARKER_ADDR,
  AARCH64_PATTERN,
  AARCH64_PATTERN_ADDR,
  AARCH64_PATTERN_REPEAT,
  AARCH64_SP,
  aarch64Answer,
  aarch64HaltOffset,
} from '../guest-extra/aarch64-guest';
import { LONG_MODE_ANSWERS } from '../guest-extra/answers';
import { GUEST_ASSETS, launchAarch64Guest, launchLongModeGuest } from '../guest-extra/guests';
import { requireTools } from '../helpers/requirements';
import { runUntil, status, withBundle, withGuest } from './harness';

test('long-mode guest: 64-bit registers, paging state and the patterns written through the higher-half alias', { skip: requireTools('qemu-system-x86_64') }, async () => {
  await withGuest(() => launchLongModeGuest({ startPaused: true }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const output = join(dir, 'lm.vmpm');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    await withBundle(output, async (reader) => {
      const cpu = (await reader.json<CpusSection>('cpus')).cpus[0]!;
      assert.equal(cpu.mode, 'long');
      for (const [name, value] of Object.entries(LONG_MODE_ANSWERS.registers)) {
        assert.equal(fromHex(cpu.registers[name] ?? 'missing'), value, `register ${name}`);
      }
      const rip = fromHex(cpu.registers.rip!);
      assert.ok(rip >= LONG_MODE_ANSWERS.haltLoop.from && rip < LONG_MODE_ANSWERS.haltLoop.to, `rip ${rip.toString(16)}`);
      assert.equal(fromHex(cpu.registers.cr0!) & 0x80000001n, 0x80000001n, 'CR0.PG and CR0.PE');
      for (const p of LONG_MODE_ANSWERS.patterns) {
        const got = await reader.read(p.phys, p.bytes.length * p.repeat);
        assert.ok(got.equals(Buffer.concat(Array(p.repeat).fill(p.bytes))), `pattern at 0x${p.phys.toString(16)}`);
      }
      // The page tables the guest built are in the capture at CR3.
      const pml4 = await reader.read(0x1000n, 8 * 512);
      // PDPT at 0x2000, present and writable (the CPU may have set the accessed bit since).
      assert.equal(pml4.readBigUInt64LE(0) & ~0x20n, 0x2003n);
      assert.equal(pml4.readBigUInt64LE(256 * 8) & ~0x20n, 0x2003n);
      // The dump's ELF notes (NT_PRSTATUS and QEMU's CPU state) are kept verbatim.
      const notes = await reader.raw('elf-notes');
      assert.ok(notes.includes(Buffer.from('CORE\0')) && notes.includes(Buffer.from('QEMU\0')));
    });
  });
});

/** The aarch64 blob has no panic device: it is done when vCPU 0 sits in its final wfi loop. */
async function waitForAarch64Halt(client: QmpClient): Promise<void> {
  const halt = AARCH64_LOAD_ADDR + BigInt(aarch64HaltOffset());
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await client.hmp('info registers');
    const pc = /PC=([0-9a-f]{16})/.exec(text);
    if (pc && (BigInt(`0x${pc[1]}`) === halt || BigInt(`0x${pc[1]}`) === halt + 4n)) return;
    if (Date.now() > deadline) throw new Error(`aarch64 guest did not reach its halt loop: ${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('aarch64 virt guest: x0..x30, sp, pc and EL1h; RAM captured at 0x40000000 with the blob and patterns in place', { skip: requireTools('qemu-system-aarch64') }, async () => {
  await withGuest(() => launchAarch64Guest(), async ({ client, dir }) => {
    await waitForAarch64Halt(client);
    const output = join(dir, 'a64.vmpm');
    await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    await withBundle(output, async (reader) => {
      const cpus = await reader.json<CpusSection>('cpus');
      assert.equal(cpus.arch, 'aarch64');
      const cpu = cpus.cpus[0]!;
      for (let n = 0; n <= 30; n++) assert.equal(fromHex(cpu.registers[`x${n}`] ?? 'missing'), aarch64Answer(n), `x${n}`);
      assert.equal(fromHex(cpu.registers.sp!), AARCH64_SP);
      assert.equal(cpu.exceptionLevel, 1);
      assert.equal(cpu.mode, 'el1h');
      const ranges = reader.ranges();
      assert.deepEqual(
        ranges.map((r) => [r.start, r.length]),
        [[0x40000000n, 64n << 20n]],
      );
      assert.ok((await reader.read(AARCH64_LOAD_ADDR, 628)).equals(readFileSync(join(GUEST_ASSETS, 'a64.bin'))));
      const pattern = await reader.read(AARCH64_PATTERN_ADDR, AARCH64_PATTERN.length * AARCH64_PATTERN_REPEAT);
      assert.ok(pattern.equals(Buffer.concat(Array(AARCH64_PATTERN_REPEAT).fill(AARCH64_PATTERN))));
      assert.ok((await reader.read(AARCH64_MARKER_ADDR, AARCH64_MARKER.length)).equals(AARCH64_MARKER));
      // Flash at 0 is a ROM device, not RAM: never read.
      await assert.rejects(reader.read(0n, 16));
      const manifest = await reader.json<Manifest>('manifest');
      assert.equal(manifest.runState.before.status, 'running');
      assert.equal(manifest.runState.after.status, 'running');
      assert.deepEqual(manifest.actions.map((a) => a.action), ['stop', 'dump-guest-memory', 'cont']);
    });
    assert.equal((await status(client)).status, 'running');
  });
});
