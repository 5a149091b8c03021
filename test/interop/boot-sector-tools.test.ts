/**
 * Exports of the known-answer boot-sector guest (samples/boot-sector-panic.vmpm, a real capture of a
 * real-mode guest, so the ELF is EM_386 in ELFCLASS64 as QEMU writes it): gdb reads its registers and
 * the 64 KiB pattern at physical 0x20000; the raw image equals `vmpm read --phys`; ELF and kdump
 * round trips keep every page digest and register; outputs are never clobbered without --force.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools } from '../helpers/requirements';
import { runCli } from '../helpers/cli';
import { assertGdbMatchesRegs, assertRegistersCarried, diffCounts, NOTE_REGISTERS_X86_64, tool, vmpm, vmpmJson } from './tools';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-interop-bs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const out = (name: string): string => join(dir, name);

describe('export of the known-answer boot sector', () => {
  it('gdb reads every register vmpm regs shows and the pattern at physical 0x20000', { skip: requireTools('gdb'), timeout: 60_000 }, async () => {
    await vmpm(['export', SAMPLE, '--format', 'elf', '-o', out('bs.elf')]);
    const compared = await assertGdbMatchesRegs(out('bs.elf'), SAMPLE, 'i386');
    assert.ok(compared >= 14, `${compared} register values compared`);
    const r = await tool('gdb', ['-nx', '-batch', '-ex', 'set architecture i386', '-ex', `core-file ${out('bs.elf')}`, '-ex', 'x/2s 0x20000', '-ex', 'x/s 0x30000']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /0x20000:\s+"QMPLAB-PATTERN!\\nQMPLAB-PATTERN!\\n/);
    assert.match(r.stdout, /0x30000:\s+"FORENSIC-MARKER-1/);
    // Zero pages are holes: 64 MiB of guest, a few hundred KiB on disk.
    assert.ok(statSync(out('bs.elf')).blocks * 512 < 4 * 1024 * 1024, 'the ELF is sparse');
  });

  it('the raw image is the guest memory byte for byte, with a side file of the captured ranges', { timeout: 60_000 }, async () => {
    await vmpm(['export', SAMPLE, '--format', 'raw', '-o', out('bs.raw')]);
    await vmpm(['read', SAMPLE, '--phys', '0', '--length', '64M', '--raw', '-o', out('bs.read')]);
    assert.ok(readFileSync(out('bs.raw')).equals(readFileSync(out('bs.read'))), 'raw image == vmpm read --phys 0 --length 64M');
    const side = JSON.parse(readFileSync(out('bs.raw.ranges.json'), 'utf8')) as { format: string; ranges: Array<{ start: string; length: string }> };
    assert.equal(side.format, 'vmpm-raw-ranges/1');
    assert.deepEqual(side.ranges.map((r) => [r.start, r.length]), [['0x0', '0x4000000']]);
  });

  for (const format of ['elf', 'kdump']) {
    it(`import(export --format ${format}) keeps every page digest and the registers`, { timeout: 60_000 }, async () => {
      await vmpm(['export', SAMPLE, '--format', format, '-o', out(`rt.${format}`), '--force']);
      await vmpm(['import', out(`rt.${format}`), '-o', out(`rt-${format}.vmpm`)]);
      assert.deepEqual(await diffCounts(SAMPLE, out(`rt-${format}.vmpm`)), { changedPages: 0, addedPages: 0, removedPages: 0, unchangedPages: 16384 });
      await assertRegistersCarried(SAMPLE, out(`rt-${format}.vmpm`), NOTE_REGISTERS_X86_64);
      const regs = await vmpmJson<{ cpus: Array<{ mode: string }> }>(['regs', out(`rt-${format}.vmpm`)]);
      assert.equal(regs.cpus[0]?.mode, 'real', 'CR0.PE clear in the QEMU note: real mode');
    });
  }

  it('an existing output is kept without --force and replaced with it; a failed export leaves nothing', { timeout: 60_000 }, async () => {
    writeFileSync(out('keep.elf'), 'precious');
    const refused = await runCli(['export', SAMPLE, '--format', 'elf', '-o', out('keep.elf')]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^vmpm: .*already exists \(use --force/);
    assert.equal(readFileSync(out('keep.elf'), 'utf8'), 'precious');
    await vmpm(['export', SAMPLE, '--format', 'elf', '-o', out('keep.elf'), '--force']);
    assert.equal(readFileSync(out('keep.elf')).readUInt32BE(0), 0x7f454c46);
    const bad = await runCli(['export', SAMPLE, '--format', 'vmdk', '-o', out('x')]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--format must be one of elf, kdump, raw/);
    const missing = await runCli(['export', join(dir, 'nope.vmpm'), '--format', 'elf', '-o', out('nope.elf')]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
    assert.throws(() => statSync(out('nope.elf')));
  });
});
