/**
 * aarch64: Debian's arm64 kernel under `qemu-system-aarch64 -M virt`, panicked with sysrq-c (no
 * pvpanic: SHUTDOWN guest-reset, RAM intact). QEMU 7.2 reports no TTBR registers for aarch64, so
 * translation starts from VMCOREINFO's swapper_pg_dir; the oracles are VMCOREINFO's own linear-map and
 * kimage numbers (PHYS_OFFSET, kimage_voffset, VA_BITS) and the arm64 Image file's bytes.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import type { StackModel, SymbolModel, TranslateModel } from '../../src/analysis';
import { Vmcoreinfo } from '../../src/guestos';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { captureArm64Panic, type Arm64Capture } from './arm64-scenario';

const skip = requireTools('qemu-system-aarch64', 'dpkg-deb', 'apt-get');
const MASK = (1n << 64n) - 1n;

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const json = async <T>(args: string[]): Promise<T> => JSON.parse(await cli([...args, '--json'])) as T;
const hex = (v: bigint) => `0x${v.toString(16)}`;
const readHex = async (bundle: string, args: string[]) => Buffer.from((await json<{ hex: string }>(['read', bundle, ...args])).hex, 'hex');

describe('virtual addresses and symbols on a real arm64 Linux guest (-M virt, cortex-a57, KASLR)', { skip }, () => {
  let c: Arm64Capture;
  let info: Vmcoreinfo;
  before(async () => {
    c = await captureArm64Panic();
    info = Vmcoreinfo.parse(await cli(['section', c.bundle, 'vmcoreinfo']));
  }, { timeout: 240_000 });
  process.on('exit', () => c && rmSync(c.dir, { recursive: true, force: true }));

  it('symbol decodes the arm64 kallsyms (base-relative, no absolute per-cpu) with KASLR', async () => {
    assert.notEqual(info.kernelOffset ?? 0n, 0n, 'the arm64 kernel randomized its base');
    const m = await json<SymbolModel>(['symbol', c.bundle, '_stext']);
    assert.equal(m.matches?.[0]?.address, hex(info.symbol('_stext')));
    assert.equal(m.symbols.encoding?.addresses, 'base-relative offsets (kallsyms_relative_base + u32)');
    for (const name of ['panic', 'sysrq_handle_crash', 'write_sysrq_trigger']) {
      const addr = BigInt((await json<SymbolModel>(['symbol', c.bundle, name])).matches![0]!.address);
      const r = await json<SymbolModel>(['symbol', c.bundle, hex(addr + 4n)]);
      assert.equal(r.symbol?.text.split('/')[0], `${name}+0x4`);
    }
    // Debian's arm64 kernel has no CONFIG_KALLSYMS_ALL: data symbols such as prb are not in the table.
    const prb = await json<SymbolModel>(['symbol', c.bundle, hex(info.symbol('prb'))]);
    assert.equal(prb.symbol, undefined);
    assert.match(prb.note ?? '', /outside the range the kernel's symbol table covers/);
  });

  it('translate of kernel text from swapper_pg_dir agrees with kimage_voffset, and the bytes are the Image file\'s', async () => {
    const fn = (await json<SymbolModel>(['symbol', c.bundle, 'sysrq_handle_crash'])).matches![0]!;
    const addr = BigInt(fn.address);
    const t = await json<TranslateModel>(['translate', c.bundle, hex(addr)]);
    assert.match(t.root.source, /swapper_pg_dir .*VMCOREINFO/);
    assert.equal(t.mode, 'aarch64 4K granule, 48-bit VA, 4 levels');
    assert.equal(t.physical, hex((addr - info.number('kimage_voffset')) & MASK));
    assert.equal(t.permissions?.noExecute, false);
    assert.equal(t.permissions?.writable, false);
    const size = Number(BigInt(fn.size!));
    const mem = await readHex(c.bundle, ['--virt', hex(addr), '--length', String(size)]);
    assert.deepEqual(mem, await readHex(c.bundle, ['--phys', t.physical!, '--length', String(size)]));
    // The arm64 Image starts at _text; code is position-independent (no KASLR relocations in text).
    // _text = KIMAGE_VADDR (MODULES_END in 6.1) + KERNELOFFSET; arm64 kallsyms has no _text symbol.
    const text = info.number('MODULES_END') + info.kernelOffset!;
    const image = readFileSync(c.guest.kernel);
    const file = image.subarray(Number(addr - text), Number(addr - text) + size);
    // ftrace_init_nop() turns the first of the two patchable-entry NOPs into `mov x9, x30` at boot.
    const MOV_X9_LR = 0xaa1e03e9;
    const NOP = 0xd503201f;
    const ftraced = file.readUInt32LE(0) === NOP && mem.readUInt32LE(0) === MOV_X9_LR;
    assert.deepEqual(mem.subarray(ftraced ? 4 : 0), file.subarray(ftraced ? 4 : 0));
  });

  it('translate of a linear-map address agrees with PHYS_OFFSET and VA_BITS', async () => {
    const va = info.symbol('mem_section');
    const pageOffset = (MASK << BigInt(info.number('VA_BITS'))) & MASK; // -(1 << VA_BITS)
    const t = await json<TranslateModel>(['translate', c.bundle, hex(va)]);
    assert.equal(t.physical, hex((va - pageOffset + info.number('PHYS_OFFSET')) & MASK));
    assert.equal(t.permissions?.noExecute, true);
    assert.deepEqual(await readHex(c.bundle, ['--virt', hex(va), '--length', '64']), await readHex(c.bundle, ['--phys', t.physical!, '--length', '64']));
  });

  it('stack: the panicking vCPU shows sysrq -> panic -> restart; regs and stack symbolize pc', async () => {
    const stacks = await json<StackModel>(['stack', c.bundle]);
    const panicking = stacks.cpus.find((x) => x.frames.some((f) => f.symbol?.startsWith('panic+')));
    assert.ok(panicking, JSON.stringify(stacks.cpus.map((x) => x.frames.map((f) => f.text))));
    const names = panicking.frames.map((f) => f.symbol?.split('+')[0]);
    const order = ['emergency_restart', 'panic', 'sysrq_handle_crash', 'write_sysrq_trigger'].map((n) => names.indexOf(n));
    assert.ok(order.every((i) => i >= 0) && order.every((v, i) => i === 0 || v > order[i - 1]!), `call order: ${names.join(' ')}`);
    for (const x of stacks.cpus) assert.ok(x.ipSymbol, `vCPU ${x.index} pc ${x.ip} symbolized`);
    const regs = await cli(['regs', c.bundle]);
    assert.ok(regs.includes(`pc=${panicking.ip} <${panicking.ipSymbol!.replace(/\/0x[0-9a-f]+$/, '')}>`));
  });

  it('a user address needs TTBR0, which QEMU 7.2 does not report: one line saying so', async () => {
    const r = await runCli(['translate', c.bundle, '0x400000']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'vmpm: 0x400000 is a user (TTBR0) address; this capture has no TTBR0_EL1 (QEMU 7.2 does not report it for aarch64), so only kernel addresses can be translated\n');
  });
});
