/**
 * Arm (QEMU's aarch64 target) `info registers` parsing, display groups and PSTATE decoding.
 *
 * QEMU 7.2 (target/arm/cpu.c, aarch64_cpu_dump_state) prints " PC=... X00=... X01=..." three per
 * line, " SP=" after X30, then "PSTATE=<8 hex> NZCV [NS |S ]EL<n><h|t>" followed by "FPU disabled"
 * or "FPCR=... FPSR=..." and Q00..Q31 as "hi:lo". A vCPU running AArch32 code is printed the 32-bit
 * way ("R00=... PSR=<8 hex> NZCV A|T svc32"); both are understood.
 */
import type { CpuState } from './cpu-state';
import { VmpmError } from '../util/errors';
import type { Hex } from '../util/hex';
import { fromHex } from '../util/hex';
import type { CpuBlock } from './lines';
import { firstLabel, hexValue, joinHexChunks, malformed, matchRepeated, parseHexFields } from './lines';
import type { BitName, FlagDecoding } from './flags';
import { decodeBits } from './flags';

const PSTATE_LINE = /^PSTATE=([0-9a-f]{8}) [N-][Z-][C-][V-] (?:N?S )?EL([0-3])([ht])(?:\s+(.*))?$/;
const PSR_LINE = /^PSR=([0-9a-f]{8}) [N-][Z-][C-][V-] [AT] (?:N?S )?([a-z]+)(?:32|26)$/;
const Q_ITEM = /Q(\d\d)=([0-9a-f]{16}):([0-9a-f]{16})/;
const FP_CONTROL = /FPCR=([0-9a-f]{8}) FPSR=([0-9a-f]{8})/;

/** AArch32 mode names (as QEMU prints them) -> exception level. */
const AARCH32_MODE_EL: Record<string, number> = { usr: 0, fiq: 1, irq: 1, svc: 1, abt: 1, und: 1, sys: 1, hyp: 2, mon: 3 };

function canonicalName(label: string): string | undefined {
  if (label === 'PC') return 'pc';
  if (label === 'SP') return 'sp';
  const x = /^X(\d\d)$/.exec(label);
  if (x && Number(x[1]) <= 30) return `x${Number(x[1])}`;
  const r = /^R(\d\d)$/.exec(label);
  if (r && Number(r[1]) <= 15) return `r${Number(r[1])}`;
  return undefined;
}

/** Parses one vCPU's block of aarch64 `info registers` output. */
export function parseAarch64Block(block: CpuBlock, arch: string): Omit<CpuState, 'qomPath' | 'threadId'> {
  const registers: Record<string, Hex> = {};
  let mode: string | undefined;
  let exceptionLevel: number | undefined;
  block.lines.forEach((line, i) => {
    const lineNo = i + 2;
    const where = () => `info registers: CPU#${block.index} line ${lineNo}`;
    const label = firstLabel(line);
    if (label === undefined) return;

    if (label === 'PSTATE') {
      const m = PSTATE_LINE.exec(line);
      if (!m) throw malformed(block.index, lineNo, line, '"PSTATE=<8 hex> NZCV EL<n><h|t>"');
      registers.pstate = hexValue(m[1]!, 32, where);
      exceptionLevel = Number(m[2]);
      mode = `el${m[2]}${m[3]}`;
      const fp = m[4] === undefined ? null : FP_CONTROL.exec(m[4]);
      if (fp) {
        registers.fpcr = hexValue(fp[1]!, 32, where);
        registers.fpsr = hexValue(fp[2]!, 32, where);
      }
      return;
    }
    if (label === 'PSR') {
      const m = PSR_LINE.exec(line);
      if (!m) throw malformed(block.index, lineNo, line, '"PSR=<8 hex> NZCV A|T <mode>32"');
      registers.cpsr = hexValue(m[1]!, 32, where);
      mode = `${m[2]}32`;
      exceptionLevel = AARCH32_MODE_EL[m[2]!];
      return;
    }
    if (/^Q\d\d$/.test(label)) {
      const items = matchRepeated(line, Q_ITEM);
      if (!items) throw malformed(block.index, lineNo, line, '"Qnn=<16 hex>:<16 hex>" fields');
      for (const m of items) registers[`q${Number(m[1])}`] = joinHexChunks([m[2]!, m[3]!]);
      return;
    }
    if (canonicalName(label) !== undefined) {
      const fields = parseHexFields(line);
      if (!fields) throw malformed(block.index, lineNo, line, 'NAME=hex fields');
      for (const [name, digits] of fields) {
        const canonical = canonicalName(name);
        if (canonical !== undefined) registers[canonical] = hexValue(digits, 64, where);
      }
    }
    // SVE Z/P/FFR registers, ZCR and future lines are kept only in `raw`.
  });

  if (mode === undefined) {
    throw new VmpmError(`info registers: CPU#${block.index} has no PSTATE line (output incomplete?)`);
  }
  if (registers.pc === undefined && registers.r15 === undefined) {
    throw new VmpmError(`info registers: CPU#${block.index} has no PC value (output incomplete?)`);
  }
  const state: Omit<CpuState, 'qomPath' | 'threadId'> = { index: block.index, arch, mode, registers, raw: block.raw };
  if (exceptionLevel !== undefined) state.exceptionLevel = exceptionLevel;
  return state;
}

const range = (prefix: string, from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

export const AARCH64_GROUPS: Array<{ title: string; names: string[] }> = [
  { title: 'General', names: [...range('x', 0, 30), ...range('r', 0, 15)] },
  { title: 'SP, PC & PSTATE', names: ['sp', 'pc', 'pstate', 'cpsr'] },
  { title: 'FP', names: ['fpcr', 'fpsr', ...range('q', 0, 31)] },
];

const NZCV_DAIF: BitName[] = [
  [31, 'N'], [30, 'Z'], [29, 'C'], [28, 'V'], [9, 'D'], [8, 'A'], [7, 'I'], [6, 'F'],
];
const PSTATE_EXTRA: BitName[] = [
  [25, 'TCO'], [24, 'DIT'], [23, 'UAO'], [22, 'PAN'], [21, 'SS'], [20, 'IL'], [12, 'SSBS'],
];
const CPSR_BITS: BitName[] = [
  [31, 'N'], [30, 'Z'], [29, 'C'], [28, 'V'], [27, 'Q'], [24, 'J'], [9, 'E'], [8, 'A'], [7, 'I'], [6, 'F'], [5, 'T'],
];

/** Decodes PSTATE (N Z C V, D A I F, exception level and stack pointer selection) or AArch32 CPSR. */
export function decodeAarch64Flags(cpu: Pick<CpuState, 'registers' | 'mode'>): FlagDecoding[] {
  const out: FlagDecoding[] = [];
  if (cpu.registers.pstate !== undefined) {
    const value = fromHex(cpu.registers.pstate);
    // M[3:2] is the exception level and M[0] selects SP_ELx (h) over SP_EL0 (t); BTYPE is bits 11:10.
    const fieldMask = 0x1fn | (3n << 10n);
    const d = decodeBits('pstate', value, [...NZCV_DAIF, ...PSTATE_EXTRA], fieldMask);
    const el = Number((value >> 2n) & 3n);
    const spx = (value & 1n) !== 0n;
    d.set.push(`EL${el}`, spx ? `SP_EL${el}` : 'SP_EL0');
    if ((value & 0x10n) !== 0n) d.set.push('AArch32');
    d.text = `${d.set.join(' ')} (EL${el}${spx ? 'h' : 't'})`;
    out.push(d);
  }
  if (cpu.registers.cpsr !== undefined) {
    const d = decodeBits('cpsr', fromHex(cpu.registers.cpsr), CPSR_BITS, 0x1fn | (0x3fn << 10n) | (0xfn << 16n) | (3n << 25n));
    d.set.push(cpu.mode);
    d.text = d.set.join(' ');
    out.push(d);
  }
  return out;
}
