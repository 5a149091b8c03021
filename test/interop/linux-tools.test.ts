/**
 * vmpm's exports opened by the classic tools, and dumps made without vmpm imported, on one real
 * Linux guest (Debian kernel, 2 vCPUs, panicked by sysrq-c; see linux-fixture.ts):
 *   - makedumpfile --dump-dmesg prints the kernel log, with this run's marker, from the ELF and the
 *     kdump export, without any vmlinux;
 *   - gdb's `info registers` of every vCPU of the ELF export equals `vmpm regs`;
 *   - drgn reads physical memory of the ELF export, and a virtual read at a kernel symbol's address
 *     (from VMCOREINFO) returns what `vmpm read --phys` returns at its physical address;
 *   - import(export(B)) has B's page digests and registers, for elf and kdump;
 *   - QEMU's own ELF and kdump-zlib (flattened) dumps of the same stopped guest import with 0 changed
 *     pages against vmpm's capture, and every analyst command works on the imported bundle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SearchModel } from '../../src/analysis/search';
import { requireTools } from '../helpers/requirements';
import { runCli } from '../helpers/cli';
import { findKernelPackage, guestBuildSkipReason } from '../linux/build-guest';
import { linuxFixture, type LinuxFixture } from './linux-fixture';
import { assertGdbMatchesRegs, drgnSkipReason, assertRegistersCarried, diffCounts, drgnScript, NOTE_REGISTERS_X86_64, PYTHON_WITH_DRGN, tool, vmpm, vmpmJson } from './tools';

const skip = requireTools('qemu-system-x86_64', 'dpkg-deb', 'xz', 'makedumpfile', 'gdb') || drgnSkipReason() || guestBuildSkipReason();

describe('interop with the classic tools on a real Linux guest', { skip }, () => {
  let f: LinuxFixture;
  const exported = (name: string): string => join(f.dir, name);

  before(async () => {
    f = await linuxFixture(() => undefined);
    await vmpm(['export', f.bundle, '--format', 'elf', '-o', exported('linux.elf')]);
    await vmpm(['export', f.bundle, '--format', 'kdump', '-o', exported('linux.kdump')]);
  }, { timeout: 300_000 });
  after(async () => {
    await f?.cleanup();
  });

  for (const format of ['elf', 'kdump']) {
    it(`makedumpfile --dump-dmesg reads the ${format} export without a vmlinux and finds this run's marker`, { timeout: 120_000 }, async () => {
      const out = join(f.dir, `dmesg-${format}.txt`);
      const r = await tool('makedumpfile', ['--dump-dmesg', exported(`linux.${format}`), out]);
      assert.equal(r.code, 0, `makedumpfile exited ${r.code}: ${r.stdout}${r.stderr}`);
      const log = readFileSync(out, 'latin1');
      assert.ok(log.includes(f.marker), `the kernel log has ${f.marker}`);
      assert.match(log, /Kernel panic - not syncing: sysrq triggered crash/);
    });
  }

  it('gdb shows, for every vCPU of the ELF export, the registers vmpm regs shows', { timeout: 120_000 }, async () => {
    const compared = await assertGdbMatchesRegs(exported('linux.elf'), f.bundle, 'i386:x86-64');
    assert.ok(compared >= 2 * 20, `${compared} register values compared`);
  });

  it('drgn reads physical memory, and a kernel symbol\'s virtual address gives the bytes vmpm read --phys gives', { timeout: 120_000 }, async () => {
    const vmcoreinfo = await vmpm(['section', f.bundle, 'vmcoreinfo']);
    const sym = /^SYMBOL\(init_uts_ns\)=([0-9a-f]+)$/m.exec(vmcoreinfo);
    const physBase = /^NUMBER\(phys_base\)=(-?\d+)$/m.exec(vmcoreinfo);
    assert.ok(sym && physBase, 'VMCOREINFO names init_uts_ns and phys_base');
    const vaddr = BigInt(`0x${sym[1]!}`);
    const paddr = vaddr - 0xffffffff80000000n + BigInt(physBase[1]!);
    const ours = await vmpmJson<{ hex: string }>(['read', f.bundle, '--phys', `0x${paddr.toString(16)}`, '--length', '390']);
    const r = await tool(PYTHON_WITH_DRGN, [drgnScript(f.dir), exported('linux.elf'), vaddr.toString(16), paddr.toString(16), '390']);
    assert.equal(r.code, 0, `drgn failed: ${r.stderr}`);
    assert.match(r.stdout, /IS_LINUX_KERNEL/);
    assert.equal(/^phys ([0-9a-f]+)$/m.exec(r.stdout)?.[1], ours.hex, 'physical read');
    assert.equal(/^virt ([0-9a-f]+)$/m.exec(r.stdout)?.[1], ours.hex, 'virtual read of init_uts_ns');
    assert.ok(Buffer.from(ours.hex, 'hex').toString('latin1').startsWith('Linux'), 'init_uts_ns starts with sysname "Linux"');
  });

  for (const format of ['elf', 'kdump']) {
    it(`import(export --format ${format}) has the bundle's page digests and registers`, { timeout: 120_000 }, async () => {
      const back = join(f.dir, `roundtrip-${format}.vmpm`);
      await vmpm(['import', exported(`linux.${format}`), '-o', back]);
      assert.deepEqual(await diffCounts(f.bundle, back), { changedPages: 0, addedPages: 0, removedPages: 0, unchangedPages: 65536 });
      await assertRegistersCarried(f.bundle, back, NOTE_REGISTERS_X86_64);
    });
  }

  for (const [label, file] of [['ELF', 'qemuElf'], ['kdump-zlib (flattened)', 'qemuKdump']] as const) {
    it(`QEMU's own ${label} dump imports with 0 changed pages against vmpm's capture`, { timeout: 120_000 }, async () => {
      const imported = join(f.dir, `qemu-${file}.vmpm`);
      const r = await vmpmJson<{ format: string; sha256: string; vmcoreinfo: boolean; cpus: number }>(['import', f[file], '-o', imported]);
      assert.equal(r.format, file === 'qemuElf' ? 'elf' : 'kdump-flattened');
      assert.equal(r.cpus, 2);
      assert.equal(r.vmcoreinfo, true);
      const sha = (await tool('sha256sum', [f[file]])).stdout.split(' ')[0];
      assert.equal(r.sha256, sha, 'the manifest keeps the dump\'s SHA-256');
      const counts = await diffCounts(f.bundle, imported);
      assert.equal(counts.changedPages, 0);
      assert.equal(counts.removedPages, 0);
      assert.equal(counts.unchangedPages, 65536);
      // QEMU also dumps pc.bios (256 KiB below 4 GiB), which vmpm's capture leaves out.
      assert.equal(counts.addedPages, 64);
      await assertRegistersCarried(f.bundle, imported, NOTE_REGISTERS_X86_64);
      assert.equal(await vmpm(['section', imported, 'vmcoreinfo']), await vmpm(['section', f.bundle, 'vmcoreinfo']));
    });
  }

  it('makedumpfile\'s own kdump-compressed output (-c -d 31, plain and flattened -F) imports; filtered pages are holes', { timeout: 180_000 }, async () => {
    const filtered = join(f.dir, 'md.kdump');
    const r = await tool('makedumpfile', ['-c', '-d', '31', exported('linux.elf'), filtered]);
    assert.equal(r.code, 0, `makedumpfile -c -d 31 failed: ${r.stdout}${r.stderr}`);
    const flat = join(f.dir, 'md.flat');
    const rf = await tool('sh', ['-c', `makedumpfile -F -c -d 31 '${exported('linux.elf')}' > '${flat}'`]);
    assert.equal(rf.code, 0, `makedumpfile -F failed: ${rf.stderr}`);
    for (const [file, format] of [[filtered, 'kdump'], [flat, 'kdump-flattened']] as const) {
      const imported = `${file}.vmpm`;
      const res = await vmpmJson<{ format: string; cpus: number }>(['import', file, '-o', imported]);
      assert.equal(res.format, format);
      assert.equal(res.cpus, 2);
      const counts = await diffCounts(f.bundle, imported);
      assert.equal(counts.changedPages, 0, 'every page makedumpfile kept is the page vmpm captured');
      assert.equal(counts.addedPages, 0);
      assert.ok(counts.removedPages > 40_000, `${counts.removedPages} filtered pages are holes, not zeros`);
      const removed = (await vmpmJson<{ memory: { removed: Array<{ start: string }> } }>(['diff', f.bundle, imported])).memory.removed[0];
      assert.ok(removed, 'diff lists the filtered ranges');
      const hole = await runCli(['read', imported, '--phys', removed.start, '--length', '16']);
      assert.equal(hole.code, 1, `${removed.start} (filtered by -d 31) reads as not captured, not as zeros`);
      assert.match(hole.stderr, /not captured/);
      const search = await vmpmJson<SearchModel>(['search', imported, '--text', f.marker]);
      assert.ok(search.matches.length > 0, 'the kernel log page survived the filter');
    }
  });

  // crash needs the 860 MB debug vmlinux: run only when scripts/crash-check.sh has cached it.
  const crashVmlinux = join(process.env.VMPM_CRASH_CACHE ?? join(homedir(), '.cache', 'vmpm-crash'), `vmlinux-${findKernelPackage()?.release ?? 'unknown'}`);
  const crashSkip = requireTools('crash') || (existsSync(crashVmlinux) ? false : `no cached debug vmlinux at ${crashVmlinux} (run scripts/crash-check.sh once)`);
  for (const format of ['elf', 'kdump']) {
    it(`crash opens the ${format} export: sys, log, bt -a`, { skip: crashSkip, timeout: 300_000 }, async () => {
      const cmds = join(f.dir, 'crash-cmds');
      writeFileSync(cmds, 'sys\nlog\nbt -a\nquit\n');
      const r = await tool('crash', ['-s', '-i', cmds, crashVmlinux, exported(`linux.${format}`)], { timeoutMs: 280_000 });
      assert.equal(r.code, 0, `crash exited ${r.code}: ${r.stderr.slice(-2000)}`);
      assert.ok(r.stdout.includes(`RELEASE: ${findKernelPackage()?.release ?? '?'}`), 'crash names the kernel release');
      assert.ok(r.stdout.includes(f.marker), 'crash\'s log shows this run\'s marker');
      assert.match(r.stdout, /PID: 1 .*COMMAND: "init"[\s\S]*sysrq_handle_crash/);
    });
  }

  it('every analyst command works on a bundle imported from QEMU\'s dump', { timeout: 120_000 }, async () => {
    const imported = join(f.dir, 'qemu-qemuElf.vmpm');
    const search = await vmpmJson<SearchModel>(['search', imported, '--text', f.marker]);
    assert.ok(search.matches.length > 0, 'marker found in the imported memory');
    for (const args of [['info'], ['regs'], ['memmap'], ['errors'], ['events'], ['verify'], ['read', '--phys', '0x1000', '--length', '64']]) {
      await vmpm([args[0]!, imported, ...args.slice(1)]);
    }
    await vmpm(['report', imported, '-o', join(f.dir, 'report.md')]);
    const info = await vmpmJson<{ manifest?: { origin?: string } }>(['info', imported]);
    assert.ok(JSON.stringify(info).includes('import'), 'info says the bundle was imported');
  });
});
