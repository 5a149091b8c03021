import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { CpusSection, Manifest } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import { cpuRegistersFromNotes, EM_386, parseElfNotes } from '../../src/formats/elf';
import { BOOT_SECTOR_ANSWERS, launchBootSectorGuest } from '../../src/guest';
import { fromHex } from '../../src/util/hex';
import { requireTools } from '../helpers/requirements';
import { runUntil, withBundle, withGuest } from '../capture/harness';

const skip = requireTools('qemu-system-x86_64');

test('a dump bundle carries what decoding its own elf-notes needs (manifest.elfNotes), and the notes decode to the known registers', { skip }, async () => {
  await withGuest(() => launchBootSectorGuest({ startPaused: true }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const dump = join(dir, 'dump.vmpm');
    const pmemsave = join(dir, 'pmemsave.vmpm');
    await capture(client, { output: dump, quiesce: 'stop-and-restore', memory: 'dump' });
    await capture(client, { output: pmemsave, quiesce: 'stop-and-restore', memory: 'pmemsave' });
    await withBundle(dump, async (reader) => {
      const manifest = await reader.json<Manifest>('manifest');
      // QEMU 7.2+ writes a real-mode x86 guest's dump as ELFCLASS64 with e_machine EM_386.
      assert.deepEqual(manifest.elfNotes, { machine: EM_386, class: 64, byteOrder: 'little' });
      const notes = parseElfNotes(await reader.raw('elf-notes'), manifest.elfNotes.byteOrder === 'little');
      const cpus = cpuRegistersFromNotes(notes, manifest.elfNotes.machine);
      assert.equal(cpus.length, 1);
      const fromInfoRegisters = (await reader.json<CpusSection>('cpus')).cpus[0]!.registers;
      for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
        assert.equal(fromHex(cpus[0]!.registers[name] ?? 'missing'), value, `register ${name} from the notes`);
        assert.equal(fromHex(fromInfoRegisters[name] ?? 'missing'), value, `register ${name} from info registers`);
      }
    });
    await withBundle(pmemsave, async (reader) => {
      assert.equal(reader.has('elf-notes'), false);
      assert.equal((await reader.json<Manifest>('manifest')).elfNotes, undefined);
    });
  });
});
