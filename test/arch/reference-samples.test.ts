/**
 * Cross-check against an independent parse of the same QEMU output (the reference lab's
 * 23-parsed-registers-samples.json, copied to test/fixtures/hmp/reference-parsed-samples.json):
 * every register it extracted must come out of parseInfoRegisters with the same value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInfoRegisters } from '../../src/arch';
import { FIXTURES, hmpFixture } from './fixtures';

interface Sample {
  source: string;
  cpus: Array<{
    index: number;
    regs: Record<string, string>;
    segs: Record<string, { selector: string; base: string; limit: string; flags: string }>;
    tables: Record<string, { base: string; limit: string }>;
  }>;
}

const FIXTURE_OF: Record<string, [file: string, arch: string]> = {
  '04-stop-cont-panic-none-smp2.txt': ['x86-real-and-protected-smp2.txt', 'x86_64'],
  '16-x86-long-mode-registers.txt': ['x86-long-mode.txt', 'x86_64'],
  '15-aarch64-virt.txt': ['aarch64-virt-smp2.txt', 'aarch64'],
};

const X86_NAMES: Record<string, string> = {
  EAX: 'rax', EBX: 'rbx', ECX: 'rcx', EDX: 'rdx', ESI: 'rsi', EDI: 'rdi', EBP: 'rbp', ESP: 'rsp', EIP: 'rip', EFL: 'rflags',
  RFL: 'rflags', CPL: 'cpl', A20: 'a20', SMM: 'smm', LDT: 'ldtr', TR: 'tr',
};

/** Reference name -> canonical name, or undefined for fields that are not registers (HLT, II). */
function canonical(name: string): string | undefined {
  if (name === 'HLT' || name === 'II') return undefined;
  const fpr = /^FPR(\d)$/.exec(name);
  if (fpr) return `st${fpr[1]}`;
  const xmm = /^XMM(\d\d)$/.exec(name);
  if (xmm) return `xmm${Number(xmm[1])}`;
  const x = /^X(\d\d)$/.exec(name);
  if (x) return `x${Number(x[1])}`;
  return X86_NAMES[name] ?? name.toLowerCase();
}

/** Reference values are QEMU's digits ("0000000000000000 0000" for FPR, "hi lo" for XMM). */
function referenceValue(name: string, text: string): bigint {
  const parts = text.split(' ');
  if (/^FPR/.test(name)) return BigInt(`0x${parts[1]}${parts[0]}`);
  return BigInt(`0x${parts.join('')}`);
}

const samples = JSON.parse(readFileSync(join(FIXTURES, 'hmp', 'reference-parsed-samples.json'), 'utf8')) as Sample[];

for (const sample of samples) {
  const [file, arch] = FIXTURE_OF[sample.source] ?? [];
  test(`every register of the reference parse of ${sample.source} matches (${file})`, () => {
    assert.ok(file && arch, `fixture for ${sample.source}`);
    const cpus = parseInfoRegisters(hmpFixture(file), arch);
    assert.deepEqual(cpus.map((c) => c.index), sample.cpus.map((c) => c.index));
    let compared = 0;
    sample.cpus.forEach((ref, i) => {
      const ours = cpus[i]!.registers;
      const check = (name: string, value: string) => {
        assert.ok(ours[name] !== undefined, `CPU#${ref.index} ${name} missing`);
        assert.equal(BigInt(ours[name]!), BigInt(`0x${value.replace(/\s/g, '')}`), `CPU#${ref.index} ${name}`);
        compared++;
      };
      for (const [name, text] of Object.entries(ref.regs)) {
        const c = canonical(name);
        if (c === undefined) continue;
        assert.equal(BigInt(ours[c] ?? 'x'), referenceValue(name, text), `CPU#${ref.index} ${name}`);
        compared++;
      }
      for (const [seg, v] of Object.entries(ref.segs ?? {})) {
        const c = canonical(seg)!;
        for (const f of ['selector', 'base', 'limit', 'flags'] as const) check(`${c}.${f}`, v[f]);
      }
      for (const [table, v] of Object.entries(ref.tables ?? {})) {
        check(`${table.toLowerCase()}.base`, v.base);
        check(`${table.toLowerCase()}.limit`, v.limit);
      }
    });
    assert.ok(compared > 30, `compared ${compared} values`);
  });
}
