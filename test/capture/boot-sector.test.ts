import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CpusSection, ErrorsSection, Manifest, MemmapSection } from '../../src/bundle/schema';
import { compressionCodec } from '../../src/bundle/codec';
import { capture } from '../../src/capture';
import { BOOT_SECTOR_ANSWERS, launchBootSectorGuest } from '../../src/guest';
import { fromHex } from '../../src/util/hex';
import { requireTools } from '../helpers/requirements';
import { runUntil, status, withBundle, withGuest } from './harness';

const skip = requireTools('qemu-system-x86_64');
const guest = (): ReturnType<typeof launchBootSectorGuest> =>
  launchBootSectorGuest({ startPaused: true, name: 'known-answer', uuid: '11111111-2222-3333-4444-555555555555' });

for (const memory of ['dump', 'pmemsave'] as const) {
  test(`boot sector (${memory}): every register and pattern byte comes back at its physical address, with the GUEST_PANICKED record`, { skip }, async () => {
    await withGuest(guest, async ({ client, dir }) => {
      await runUntil(client, 'GUEST_PANICKED');
      const output = join(dir, 'panic.vmpm');
      const result = await capture(client, { output, quiesce: 'stop-and-restore', memory });
      assert.equal(result.path, output);
      assert.ok(existsSync(output));
      await withBundle(output, async (reader) => {
        const cpus = await reader.json<CpusSection>('cpus');
        assert.equal(cpus.arch, 'x86_64');
        assert.equal(cpus.cpus.length, 1);
        const cpu = cpus.cpus[0]!;
        assert.equal(cpu.mode, 'real');
        for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
          assert.equal(fromHex(cpu.registers[name] ?? 'missing'), value, `register ${name}`);
        }
        for (const p of BOOT_SECTOR_ANSWERS.patterns) {
          const repeat = p.repeat ?? 1;
          const got = await reader.read(p.phys, p.bytes.length * repeat);
          assert.ok(got.equals(Buffer.concat(Array(repeat).fill(p.bytes))), `pattern at 0x${p.phys.toString(16)}`);
        }
        // RAM is 0..64 MiB and nothing else: pc.bios at 0xfffc0000 is firmware, not captured.
        const ranges = reader.ranges();
        assert.equal(ranges[0]!.start, 0n);
        assert.equal(ranges.reduce((s, r) => s + r.length, 0n), 64n << 20n);
        assert.ok(ranges.every((r) => r.start + r.length <= 64n << 20n));
        const memmap = await reader.json<MemmapSection>('memmap');
        const bios = memmap.regions.find((r) => r.name === 'pc.bios');
        assert.equal(bios?.captured, false);
        assert.ok(memmap.regions.filter((r) => r.name === 'pc.ram').every((r) => r.captured));

        const errors = await reader.json<ErrorsSection>('errors');
        const panic = errors.records.find((r) => r.kind === 'guest-panicked' && r.source === 'event');
        assert.ok(panic, JSON.stringify(errors.records));
        const manifest = await reader.json<Manifest>('manifest');
        assert.equal(manifest.runState.before.status, 'guest-panicked');
        assert.equal(manifest.runState.after.status, 'guest-panicked');
        assert.equal(manifest.vm.name, 'known-answer');
        assert.equal(manifest.vm.uuid, '11111111-2222-3333-4444-555555555555');
        assert.equal(manifest.consistent, true);
        assert.equal(manifest.host.codec, compressionCodec().name, 'the manifest names the zstd that wrote the frames');
        // A panicked guest is never stopped or resumed by vmpm.
        assert.deepEqual(manifest.actions.map((a) => a.action), [memory === 'dump' ? 'dump-guest-memory' : 'pmemsave']);
        assert.equal(reader.has('qmp-transcript'), true);
        assert.equal(reader.has('elf-notes'), memory === 'dump');
        assert.equal((await reader.verify()).ok, true);
      });
      assert.equal((await status(client)).status, 'guest-panicked');
    });
  });
}
