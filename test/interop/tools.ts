/** Helpers for the interop tests: run the classic tools and the vmpm CLI, parse what they print. */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegsModel } from '../../src/analysis/regs';
import { runCli } from '../helpers/cli';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tool(cmd: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export async function vmpm(args: string[], timeoutMs = 120_000): Promise<string> {
  const r = await runCli(args, { timeoutMs });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export async function vmpmJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await vmpm([...args, '--json'])) as T;
}

/** gdb's `info registers` per thread (LWP = vCPU index + 1), names lowercased, values as bigint. */
export async function gdbRegisters(core: string, architecture: string): Promise<Map<number, Map<string, bigint>>> {
  const r = await tool('gdb', ['-nx', '-batch', '-ex', `set architecture ${architecture}`, '-ex', `core-file ${core}`, '-ex', 'thread apply all info registers']);
  assert.equal(r.code, 0, `gdb failed: ${r.stderr}`);
  const threads = new Map<number, Map<string, bigint>>();
  let current: Map<string, bigint> | undefined;
  for (const line of r.stdout.split('\n')) {
    const t = /^Thread \d+ \(LWP (\d+)\)/.exec(line);
    if (t) {
      current = new Map();
      threads.set(Number(t[1]), current);
      continue;
    }
    const m = /^([a-z0-9_]+)\s+(0x[0-9a-f]+)\s/.exec(line);
    if (m && current) current.set(m[1]!, BigInt(m[2]!));
  }
  return threads;
}

/** gdb's register names -> vmpm's canonical ones (bundle/schema.ts CpuState). */
export const GDB_TO_VMPM: Record<string, string> = {
  eflags: 'rflags', cs: 'cs.selector', ss: 'ss.selector', ds: 'ds.selector', es: 'es.selector', fs: 'fs.selector', gs: 'gs.selector',
  fs_base: 'fs.base', gs_base: 'gs.base', eax: 'rax', ebx: 'rbx', ecx: 'rcx', edx: 'rdx', esi: 'rsi', edi: 'rdi', ebp: 'rbp', esp: 'rsp', eip: 'rip',
};

/** Asserts gdb shows, for every vCPU, the values `vmpm regs` has; returns how many values were compared. */
export async function assertGdbMatchesRegs(core: string, bundle: string, architecture: string): Promise<number> {
  const regs = await vmpmJson<RegsModel>(['regs', bundle]);
  const gdb = await gdbRegisters(core, architecture);
  assert.equal(gdb.size, regs.cpus.length, `gdb sees ${gdb.size} threads for ${regs.cpus.length} vCPUs`);
  let compared = 0;
  for (const cpu of regs.cpus) {
    const thread = gdb.get(cpu.index + 1);
    assert.ok(thread, `gdb has a thread LWP ${cpu.index + 1} for vCPU ${cpu.index}`);
    assert.ok(thread.size >= 16, `gdb printed ${thread.size} registers for vCPU ${cpu.index}`);
    for (const [name, value] of thread) {
      const ours = cpu.registers[GDB_TO_VMPM[name] ?? name];
      if (ours === undefined) continue;
      assert.equal(value, BigInt(ours), `vCPU ${cpu.index} ${name}: gdb ${value.toString(16)} vs vmpm ${ours}`);
      compared++;
    }
  }
  return compared;
}

export const PYTHON_WITH_DRGN = '/usr/bin/python3';

/** false when Debian's python3-drgn imports, else why not (a failure under CI=true, which installs it). */
export function drgnSkipReason(): false | string {
  try {
    execFileSync(PYTHON_WITH_DRGN, ['-c', 'import drgn'], { stdio: 'ignore' });
    return false;
  } catch {
    const message = `needs drgn for ${PYTHON_WITH_DRGN} (apt-get install python3-drgn)`;
    if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
    return message;
  }
}

/** A drgn script that prints the physical and the virtual read of `n` bytes, hex. */
export function drgnScript(dir: string): string {
  const path = join(dir, 'read_core.py');
  writeFileSync(
    path,
    [
      'import sys, drgn',
      'core, vaddr, paddr, n = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16), int(sys.argv[4])',
      'prog = drgn.Program()',
      'prog.set_core_dump(core)',
      'print("flags", prog.flags)',
      'print("phys", prog.read(paddr, n, True).hex())',
      'print("virt", prog.read(vaddr, n).hex())',
      '',
    ].join('\n'),
  );
  return path;
}

/** Registers the ELF notes carry (NT_PRSTATUS + QEMU's x86 note) that a capture also has. */
export const NOTE_REGISTERS_X86_64 = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
  'cs.selector', 'ss.selector', 'ds.selector', 'es.selector', 'fs.selector', 'gs.selector', 'fs.base', 'gs.base',
  'cr0', 'cr2', 'cr3', 'cr4', 'gdt.base', 'gdt.limit', 'idt.base', 'idt.limit',
];

/**
 * Round-trip check of registers: every register the imported bundle has equals the original's
 * (where the original has it), and every register in `expected` the original has came back.
 */
export async function assertRegistersCarried(original: string, imported: string, expected: string[]): Promise<void> {
  const a = await vmpmJson<RegsModel>(['regs', original]);
  const b = await vmpmJson<RegsModel>(['regs', imported]);
  assert.equal(b.cpus.length, a.cpus.length, 'same vCPU count');
  for (const cpu of a.cpus) {
    const other = b.cpus.find((c) => c.index === cpu.index);
    assert.ok(other, `vCPU ${cpu.index} imported`);
    for (const [name, value] of Object.entries(other.registers)) {
      const mine = cpu.registers[name];
      if (mine !== undefined) assert.equal(BigInt(value), BigInt(mine), `vCPU ${cpu.index} ${name}`);
    }
    for (const name of expected) {
      if (cpu.registers[name] !== undefined) assert.ok(other.registers[name] !== undefined, `vCPU ${cpu.index} ${name} carried over`);
    }
    for (const absent of ['efer', 'dr7', 'mxcsr', 'xmm0']) assert.equal(other.registers[absent], undefined, `${absent} is absent in the notes, not zero`);
  }
}

export interface DiffCounts {
  changedPages: number;
  addedPages: number;
  removedPages: number;
  unchangedPages: number;
}

export async function diffCounts(a: string, b: string): Promise<DiffCounts> {
  const d = await vmpmJson<{ memory: { counts: DiffCounts } }>(['diff', a, b]);
  return d.memory.counts;
}
