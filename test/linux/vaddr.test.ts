/**
 * Virtual addresses, kernel symbols and stack scans on a real Debian Linux guest that panicked with
 * sysrq-c, once booted through PVH (no KASLR) and once as the packaged bzImage (KASLR). The oracles
 * are independent of vmpm's own walker: VMCOREINFO's kernel-image mapping (phys_base), the vmlinux ELF
 * file's bytes (up to KASLR relocations), the busybox binary the initramfs holds, and the direct map's
 * 1:1 layout.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBundle, openKernelView, type StackModel, type SymbolModel, type TranslateModel } from '../../src/analysis';
import { Vmcoreinfo } from '../../src/guestos';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { guestBuildSkipReason } from './build-guest';
import { scenario, type Scenario } from './scenario';

const skip = requireTools('qemu-system-x86_64', 'dpkg-deb', 'xz') || guestBuildSkipReason();
const START_KERNEL_MAP = 0xffffffff80000000n;

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await cli([...args, '--json'])) as T;
const hex = (v: bigint) => `0x${v.toString(16)}`;

async function readHex(bundle: string, args: string[]): Promise<Buffer> {
  return Buffer.from((await json<{ hex: string }>(['read', bundle, ...args])).hex, 'hex');
}

/** Bytes of an ELF64 little-endian file at a virtual address, from its PT_LOAD program headers. */
function elfBytesAt(file: Buffer, vaddr: bigint, length: number): Buffer {
  const phoff = Number(file.readBigUInt64LE(0x20));
  const phentsize = file.readUInt16LE(0x36);
  const phnum = file.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (file.readUInt32LE(ph) !== 1) continue; // PT_LOAD
    const offset = file.readBigUInt64LE(ph + 8);
    const va = file.readBigUInt64LE(ph + 16);
    const filesz = file.readBigUInt64LE(ph + 32);
    if (vaddr >= va && vaddr + BigInt(length) <= va + filesz) return file.subarray(Number(offset + vaddr - va), Number(offset + vaddr - va) + length);
  }
  throw new Error(`no PT_LOAD holds ${hex(vaddr)}`);
}

/**
 * Memory equals the file except where KASLR relocated a 32-bit absolute address: there the
 * little-endian u32 in memory is the file's plus the KASLR offset (mod 2^32).
 */
function sameUpToRelocation(mem: Buffer, file: Buffer, kaslr: bigint): { ok: boolean; relocations: number; at?: number } {
  const delta = Number(kaslr & 0xffffffffn);
  let relocations = 0;
  for (let i = 0; i < mem.length; i++) {
    if (mem[i] === file[i]) continue;
    if (delta === 0) return { ok: false, relocations, at: i };
    let fixed = false;
    for (let j = Math.max(0, i - 3); j <= i && j + 4 <= mem.length; j++) {
      if (mem.readUInt32LE(j) === ((file.readUInt32LE(j) + delta) >>> 0)) {
        relocations++;
        i = j + 3;
        fixed = true;
        break;
      }
    }
    if (!fixed) return { ok: false, relocations, at: i };
  }
  return { ok: true, relocations };
}

for (const kernel of ['pvh', 'bzImage'] as const) {
  describe(`virtual addresses and symbols on a real Linux guest (${kernel === 'pvh' ? 'PVH vmlinux, no KASLR' : 'bzImage, KASLR'})`, { skip }, () => {
    let captured: Scenario;
    let bundle: string;
    let info: Vmcoreinfo;
    let stacks: StackModel;
    before(async () => {
      captured = await scenario({ trigger: 'sysrq', kernel });
      bundle = captured.bundle;
      info = Vmcoreinfo.parse(await cli(['section', bundle, 'vmcoreinfo']));
      stacks = await json<StackModel>(['stack', bundle]);
    }, { timeout: 180_000 });

    it('KASLR is what the boot path says: off for PVH, on for the bzImage', () => {
      const offset = info.kernelOffset ?? 0n;
      if (kernel === 'pvh') assert.equal(offset, 0n);
      else assert.notEqual(offset, 0n, 'the bzImage boot randomized the kernel (KERNELOFFSET != 0)');
    });

    it('symbol decodes kallsyms from memory, KASLR included, and names the 6.1 encoding', async () => {
      const stext = await json<SymbolModel>(['symbol', bundle, '_stext']);
      assert.equal(stext.matches?.[0]?.address, hex(info.symbol('_stext')));
      assert.match(stext.symbols.encoding?.names ?? '', /ULEB128/);
      assert.match(stext.symbols.encoding?.addresses ?? '', /absolute per-cpu/);
      assert.ok(stext.symbols.count > 50_000, `${stext.symbols.count} symbols`);
      // Every kernel symbol VMCOREINFO names resolves back to itself by address.
      for (const name of ['prb', 'printk_rb_static', 'init_uts_ns', 'swapper_pg_dir', 'node_data']) {
        const addr = info.symbol(name);
        const m = await json<SymbolModel>(['symbol', bundle, hex(addr)]);
        assert.equal(m.symbol?.start, hex(addr), `${name}: ${JSON.stringify(m.symbol)}`);
        assert.equal(m.symbol?.offset, '0x0');
      }
    });

    it('symbol sysrq_handle_crash gives an address that, translated, holds the kernel image bytes of that function', async () => {
      const m = await json<SymbolModel>(['symbol', bundle, 'sysrq_handle_crash']);
      const match = m.matches?.[0];
      assert.ok(match && match.size, JSON.stringify(m));
      const addr = BigInt(match.address);
      const size = Number(BigInt(match.size));
      const t = await json<TranslateModel>(['translate', bundle, hex(addr)]);
      assert.equal(t.mapped, true);
      // VMCOREINFO's kernel-image map: virt - __START_KERNEL_map + phys_base.
      assert.equal(t.physical, hex(addr - START_KERNEL_MAP + info.number('phys_base')));
      assert.equal(t.permissions?.noExecute, false, 'kernel text is executable');
      assert.equal(t.permissions?.user, false, 'kernel text is not user-accessible');
      const viaVirt = await readHex(bundle, ['--virt', hex(addr), '--length', String(size)]);
      const viaPhys = await readHex(bundle, ['--phys', t.physical!, '--length', String(size)]);
      assert.deepEqual(viaVirt, viaPhys);
      const vmlinux = readFileSync(join(captured.guest.dir, 'vmlinux'));
      const linkAddr = addr - (info.kernelOffset ?? 0n);
      const file = elfBytesAt(vmlinux, linkAddr, size);
      // ftrace_init() turns each function's 5-byte `call __fentry__` into the 5-byte NOP 0f 1f 44 00 00 at boot.
      const entry = viaVirt.subarray(0, 4).equals(Buffer.from('f30f1efa', 'hex')) ? 4 : 0;
      const ftraced = file[entry] === 0xe8 && viaVirt.subarray(entry, entry + 5).equals(Buffer.from('0f1f440000', 'hex'));
      const from = ftraced ? entry + 5 : 0;
      const same = sameUpToRelocation(viaVirt.subarray(from), file.subarray(from), info.kernelOffset ?? 0n);
      assert.ok(same.ok, `memory differs from vmlinux at +${from + (same.at ?? 0)}: ${viaVirt.toString('hex')} vs ${file.toString('hex')}`);
      if (kernel === 'bzImage') assert.ok(same.relocations > 0, 'the KASLR kernel relocated the absolute address in sysrq_handle_crash');
    });

    it('stack: the panicking vCPU shows the sysrq -> panic path; every RIP is symbolized or explained', async () => {
      assert.match(stacks.note, /scan, not an unwinder/);
      const panicking = stacks.cpus.find((c) => c.frames.some((f) => f.symbol?.startsWith('panic+')));
      assert.ok(panicking, `a vCPU's scan shows panic(): ${JSON.stringify(stacks.cpus.map((c) => c.frames.map((f) => f.text)))}`);
      const names = panicking.frames.map((f) => f.symbol?.split('+')[0]);
      const order = ['panic', 'sysrq_handle_crash', 'write_sysrq_trigger', 'ksys_write'].map((n) => names.indexOf(n));
      assert.ok(order.every((i) => i >= 0) && order.every((v, i) => i === 0 || v > order[i - 1]!), `frames in call order: ${names.join(' ')}`);
      for (const f of panicking.frames) assert.match(f.text, /^\? (\S+\+0x[0-9a-f]+\/0x[0-9a-f]+|0x[0-9a-f]+ \[module\])$/);
      // Its RIP: pvpanic's module code (the pvpanic write paused the vCPU) or a function on the panic path.
      const rip = await json<SymbolModel>(['symbol', bundle, panicking.ip!]);
      if (rip.symbol) assert.match(rip.symbol.name, /panic|sysrq|nmi|crash|notifier|pvpanic/);
      else assert.match(rip.note ?? '', /module area/);
      for (const c of stacks.cpus) assert.ok(c.ipSymbol !== undefined || /module area/.test(c.ipNote ?? ''), `vCPU ${c.index} rip ${c.ip}: ${c.ipSymbol ?? c.ipNote}`);
      const regs = await cli(['regs', bundle]);
      for (const c of stacks.cpus.filter((x) => x.ipSymbol)) assert.ok(regs.includes(`rip=${c.ip} <${c.ipSymbol!.replace(/\/0x[0-9a-f]+$/, '')}>`), `regs shows rip=${c.ip} <${c.ipSymbol}>`);
    });

    it('translate: a direct-map address and the kernel text it aliases read the same bytes', async () => {
      // mem_section is a direct-map pointer (memblock memory); page_offset_base = virt - phys is 1 GiB aligned.
      const memSection = info.symbol('mem_section');
      const t = await json<TranslateModel>(['translate', bundle, hex(memSection)]);
      assert.equal(t.mapped, true);
      const pageOffset = memSection - BigInt(t.physical!);
      assert.equal(pageOffset & ((1n << 30n) - 1n), 0n, `page_offset_base ${hex(pageOffset)} is 1 GiB aligned`);
      assert.ok(pageOffset >= 0xff00000000000000n && pageOffset < START_KERNEL_MAP);
      // The first pointer in mem_section's root is another direct-map allocation: same offset.
      const root0 = (await readHex(bundle, ['--virt', hex(memSection), '--length', '8'])).readBigUInt64LE(0);
      const t2 = await json<TranslateModel>(['translate', bundle, hex(root0)]);
      assert.equal(BigInt(t2.physical!), root0 - pageOffset);
      // The direct-map alias of sysrq_handle_crash's physical page holds the same code.
      const fn = BigInt((await json<SymbolModel>(['symbol', bundle, 'sysrq_handle_crash'])).matches![0]!.address);
      const alias = pageOffset + (fn - START_KERNEL_MAP + info.number('phys_base'));
      assert.deepEqual(await readHex(bundle, ['--virt', hex(alias), '--length', '32']), await readHex(bundle, ['--virt', hex(fn), '--length', '32']));
      const ta = await json<TranslateModel>(['translate', bundle, hex(alias)]);
      assert.equal(ta.permissions?.noExecute, true, 'the direct map is not executable');
    });

    it("translate: a user-space address of init holds the busybox binary; read --virt equals read --phys", async () => {
      const panicking = stacks.cpus.find((c) => c.frames.some((f) => f.symbol?.startsWith('sysrq_handle_crash+')))!;
      // /init is PID 1 (busybox sh) and wrote to /proc/sysrq-trigger itself: the panicking vCPU runs in its mm.
      const busybox = readFileSync(join(captured.guest.dir, 'busybox'));
      const firstLoad = (() => {
        const phoff = Number(busybox.readBigUInt64LE(0x20));
        for (let i = 0; i < busybox.readUInt16LE(0x38); i++) {
          const ph = phoff + i * busybox.readUInt16LE(0x36);
          if (busybox.readUInt32LE(ph) === 1 && busybox.readBigUInt64LE(ph + 8) === 0n) return busybox.readBigUInt64LE(ph + 16);
        }
        throw new Error('busybox has no PT_LOAD at offset 0');
      })();
      assert.equal(busybox.readUInt16LE(0x10), 2, 'busybox-static is ET_EXEC (loaded at its link address)');
      const t = await json<TranslateModel>(['translate', bundle, hex(firstLoad), '--cpu', String(panicking.index)]);
      assert.equal(t.mapped, true, JSON.stringify(t));
      assert.equal(t.permissions?.user, true);
      assert.equal(t.levels.length, 4);
      const viaVirt = await readHex(bundle, ['--virt', hex(firstLoad), '--length', '4096', '--cpu', String(panicking.index)]);
      assert.deepEqual(viaVirt.subarray(0, 64), busybox.subarray(0, 64));
      assert.deepEqual(viaVirt, await readHex(bundle, ['--phys', t.physical!, '--length', '4096']));
      // A read that crosses from this page into the next maps each page on its own.
      const cross = await readHex(bundle, ['--virt', hex(firstLoad + 4096n - 8n), '--length', '16', '--cpu', String(panicking.index)]);
      const next = await json<TranslateModel>(['translate', bundle, hex(firstLoad + 4096n), '--cpu', String(panicking.index)]);
      if (next.mapped) assert.deepEqual(cross.subarray(8), await readHex(bundle, ['--phys', next.physical!, '--length', '8']));
    });

    it('an unmapped address is one line naming the level that is not present', async () => {
      const r = await runCli(['read', bundle, '--virt', '0x10', '--length', '16']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^vmpm: virtual address 0x10 is not mapped: the (pgd|pud|pmd|pte) entry at physical 0x[0-9a-f]+ is not present \(0x[0-9a-f]+\)\n$/);
      const t = await json<TranslateModel>(['translate', bundle, '0x10']);
      assert.equal(t.mapped, false);
      assert.ok(t.notPresent);
    });
  });
}

describe('an NMI panic (unknown_nmi_panic + QMP inject-nmi): the scan shows the NMI path on the stack the kernel ran it on', { skip }, () => {
  it('the panicking vCPU: exc_nmi -> unknown_nmi_error -> panic, on the NMI stack (or the task stack when it interrupted user mode), and its RIP is on the panic path or in pvpanic', { timeout: 180_000 }, async (t) => {
    const s = await scenario({ trigger: 'nmi' });
    const stacks = await json<StackModel>(['stack', s.bundle]);
    // inject-nmi reaches every vCPU; the kernel's own panic_cpu (an atomic_t) says which one won the
    // panic. Another vCPU's scan can hold stale panic frames on its task stack: not the one to check.
    const panicCpu = await json<SymbolModel>(['symbol', s.bundle, 'panic_cpu']);
    const at = panicCpu.matches?.[0]?.address;
    assert.ok(at, 'panic_cpu in kallsyms');
    const winner = (await readHex(s.bundle, ['--virt', at, '--length', '4'])).readInt32LE(0);
    const panicking = stacks.cpus.find((c) => c.index === winner);
    assert.ok(panicking, `panic_cpu ${winner}: ${JSON.stringify(stacks.cpus.map((c) => [c.index, c.ipSymbol ?? c.ipNote, c.frames.map((f) => f.text)]))}`);
    const names = panicking.frames.map((f) => f.symbol?.split('+')[0]);
    const order = ['panic', 'unknown_nmi_error.cold', 'exc_nmi'].map((n) => names.indexOf(n));
    assert.ok(order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, `NMI path in call order: ${names.join(' ')}`);
    // An NMI that interrupts the kernel runs on its own IST stack in the cpu_entry_area. One that
    // interrupts user mode (the guest's /init between READY and its sleep: seen in CI under load) is
    // moved by asm_exc_nmi onto the task stack, whose top holds the pt_regs of the interrupted
    // context: then that context's CS must be a user-mode selector (RPL 3).
    const sp = BigInt(panicking.sp!);
    if (sp < 0xfffffe0000000000n) {
      const THREAD_SIZE = 16n * 1024n; // x86_64 with KASAN off; vmap'd stacks are THREAD_SIZE aligned
      const top = (sp | (THREAD_SIZE - 1n)) + 1n;
      // struct pt_regs is the last 21 words of the stack (no top padding on x86_64); cs is word 17.
      const cs = (await readHex(s.bundle, ['--virt', hex(top - 21n * 8n + 17n * 8n), '--length', '8'])).readBigUInt64LE(0);
      assert.equal(cs & 3n, 3n, `NMI on the task stack at ${panicking.sp}, but the pt_regs at its top has CS 0x${cs.toString(16)}, not a user-mode selector`);
      t.diagnostic(`the NMI interrupted user mode (CS 0x${cs.toString(16)}): exc_nmi ran on the task stack`);
    }
    const rip = await json<SymbolModel>(['symbol', s.bundle, panicking.ip!]);
    if (rip.symbol) assert.match(rip.symbol.name, /panic|nmi|notifier|pvpanic/);
    else assert.match(rip.note ?? '', /module area/);
  });
});

describe('a guest with 5 GiB of RAM: the direct map above the PCI hole', { skip }, () => {
  it('direct-map addresses above 4 GiB translate to RAM above the hole and read the same through --virt and --phys; the hole is not mapped', { timeout: 240_000 }, async () => {
    const s = await scenario({ trigger: 'sysrq', memory: '5G' });
    const info = Vmcoreinfo.parse(await cli(['section', s.bundle, 'vmcoreinfo']));
    // memblock allocates top-down: mem_section's root lands in the RAM QEMU puts above 4 GiB.
    const memSection = info.symbol('mem_section');
    const t = await json<TranslateModel>(['translate', s.bundle, hex(memSection)]);
    const phys = BigInt(t.physical!);
    assert.ok(phys >= 1n << 32n, `mem_section at physical ${t.physical}`);
    assert.equal(t.captured, true);
    const pageOffset = memSection - phys;
    assert.equal(pageOffset & ((1n << 30n) - 1n), 0n);
    assert.deepEqual(
      await readHex(s.bundle, ['--virt', hex(memSection), '--length', '4096']),
      await readHex(s.bundle, ['--phys', t.physical!, '--length', '4096']),
    );
    // The last page of RAM (6 GiB - 4 KiB physical: 3 GiB low + 2 GiB high) is mapped 1:1...
    const top = await json<TranslateModel>(['translate', s.bundle, hex(pageOffset + 0x1_7fff_f000n)]);
    assert.equal(top.physical, '0x17ffff000');
    // ...and the PCI hole (3-4 GiB physical) is not RAM: the direct map has no entry for it.
    const hole = await runCli(['read', s.bundle, '--virt', hex(pageOffset + 0xd000_0000n), '--length', '16']);
    assert.equal(hole.code, 1);
    assert.match(hole.stderr, /^vmpm: virtual address 0x[0-9a-f]+ is not mapped: the (pud|pmd|pte) entry at physical 0x[0-9a-f]+ is not present/);
  });
});

describe('--system-map for kernels without kallsyms in VMCOREINFO', { skip }, () => {
  it('a System.map at link addresses (the PVH boot\'s symbols), shifted by KERNELOFFSET, answers like kallsyms on the KASLR boot; foreign and placeholder maps are refused', { timeout: 240_000 }, async () => {
    const pvh = await scenario({ trigger: 'sysrq', kernel: 'pvh' });
    const kaslr = await scenario({ trigger: 'sysrq', kernel: 'bzImage' });
    // Debian's linux-image ships only a placeholder System.map (the real one is in the -dbg package):
    // write one in `nm -n` format from the unrandomized PVH boot, whose addresses are the link addresses.
    const b = await openBundle(pvh.bundle);
    let map: string;
    try {
      const table = (await (await openKernelView(b)).symbols()).table;
      const lines: string[] = [];
      for (let i = 0; i < table.count; i++) {
        const sym = table.symbol(i);
        lines.push(`${sym.address.toString(16).padStart(16, '0')} ${sym.type} ${sym.name}`);
      }
      map = `${lines.join('\n')}\n`;
    } finally {
      await b.close();
    }
    const dir = mkdtempSync(join(tmpdir(), 'vmpm-sysmap-'));
    try {
      const mapFile = join(dir, 'System.map');
      writeFileSync(mapFile, map);
      for (const q of ['sysrq_handle_crash', '_stext', 'panic']) {
        const a = await json<SymbolModel>(['symbol', kaslr.bundle, q]);
        const m = await json<SymbolModel>(['symbol', kaslr.bundle, q, '--system-map', mapFile]);
        assert.equal(m.matches?.[0]?.address, a.matches?.[0]?.address, q);
        assert.match(m.symbols.source, /^System.map /);
      }
      const frames = (st: StackModel) => st.cpus.map((c) => c.frames.map((f) => f.symbol ?? f.text));
      assert.deepEqual(frames(await json<StackModel>(['stack', kaslr.bundle, '--system-map', mapFile])), frames(await json<StackModel>(['stack', kaslr.bundle])));
      // The same map with _stext moved by a page is another build: refused in one line.
      const foreign = join(dir, 'foreign.map');
      writeFileSync(foreign, map.replace(/^([0-9a-f]+) T _stext$/m, (_l, a: string) => `${(BigInt(`0x${a}`) + 0x1000n).toString(16)} T _stext`));
      const r = await runCli(['symbol', kaslr.bundle, 'panic', '--system-map', foreign]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^vmpm: .*foreign\.map does not belong to this kernel: its _stext is 0x[0-9a-f]+ .*VMCOREINFO says 0x[0-9a-f]+\n$/);
      // Debian's placeholder (what /boot/System.map-* holds): a clear pointer to the -dbg package.
      const deb = readdirSync(join(kaslr.guest.dir, 'debs')).find((f) => f.startsWith('linux-image-') && f.endsWith('.deb'))!;
      const tarball = execFileSync('dpkg-deb', ['--fsys-tarfile', join(kaslr.guest.dir, 'debs', deb)], { maxBuffer: 512 << 20 });
      const placeholder = join(dir, 'placeholder.map');
      writeFileSync(placeholder, execFileSync('tar', ['-xO', '--wildcards', './boot/System.map-*'], { input: tarball, maxBuffer: 64 << 20 }));
      const p = await runCli(['symbol', kaslr.bundle, 'panic', '--system-map', placeholder]);
      assert.equal(p.code, 1);
      assert.match(p.stderr, /^vmpm: .*placeholder\.map is Debian's placeholder System.map, not a symbol table \(the real one is in the linux-image-\*-dbg package\)\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
