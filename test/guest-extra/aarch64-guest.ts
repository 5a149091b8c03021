/**
 * The aarch64 known-answer guest for `qemu-system-aarch64 -M virt`: a tiny raw code blob, hand-encoded
 * here because no aarch64 assembler is installed. `assets/guests/a64.bin` is the committed output of
 * `buildAarch64Guest()` (a test checks they are equal); load it with
 *   -device loader,file=a64.bin,addr=0x40200000,cpu-num=0
 * (QEMU refuses 0x40080000: the virt machine puts its DTB at 0x40000000..0x400fffff when there is no
 * -kernel, and overlapping ROM regions abort startup) which places it in RAM and points vCPU 0's PC at it (no firmware, MMU off, EL1h, so VA == PA).
 *
 * Program (assembly equivalent):
 *       mov  x0, #0x40300000          ; pattern destination
 *       mov  x1, #4096                ; 4096 x 16 bytes = 64 KiB
 *       mov  x2, #"AARCH64-"          ; pattern bytes 0..7 (little-endian)
 *       mov  x3, #"PATTERN\n"         ; pattern bytes 8..15
 *   1:  str  x2, [x0], #8
 *       str  x3, [x0], #8
 *       subs x1, x1, #1
 *       b.ne 1b
 *       mov  x0, #0x40310000          ; marker "AARCH64-MARKER-1\0" as three 8-byte stores
 *       mov x2, #w0 ; str x2, [x0], #8 ; mov x2, #w1 ; str x2, [x0], #8 ; mov x2, #w2 ; str x2, [x0], #8
 *       mov  x0, #0x40400000 ; mov sp, x0
 *       mov  xN, #answer(N)           ; N = 0..30
 *   2:  wfi
 *       b    2b
 * Each 64-bit `mov` is a movz plus movk for every other non-zero 16-bit half.
 */

export const AARCH64_LOAD_ADDR = 0x40200000n;
export const AARCH64_PATTERN_ADDR = 0x40300000n;
export const AARCH64_PATTERN = Buffer.from('AARCH64-PATTERN\n', 'latin1');
export const AARCH64_PATTERN_REPEAT = 4096;
export const AARCH64_MARKER_ADDR = 0x40310000n;
export const AARCH64_MARKER = Buffer.from('AARCH64-MARKER-1\0', 'latin1');
export const AARCH64_SP = 0x40400000n;

/** x0..x30 at the end: 0xa64000NN_c0de00NN, so each register's value names the register. */
export function aarch64Answer(n: number): bigint {
  const nn = BigInt(n);
  return 0xa6400000c0de0000n | (nn << 32n) | nn;
}

const movz = (rd: number, imm16: number, hw: number): number => (0xd2800000 | (hw << 21) | (imm16 << 5) | rd) >>> 0;
const movk = (rd: number, imm16: number, hw: number): number => (0xf2800000 | (hw << 21) | (imm16 << 5) | rd) >>> 0;
/** str xT, [xN], #imm9 (post-index). */
const strPost = (rt: number, rn: number, imm9: number): number => (0xf8000400 | ((imm9 & 0x1ff) << 12) | (rn << 5) | rt) >>> 0;
const subsImm = (rd: number, rn: number, imm12: number): number => (0xf1000000 | (imm12 << 10) | (rn << 5) | rd) >>> 0;
/** b.<cond> back or forward by `offset` instructions. */
const bCond = (cond: number, offset: number): number => (0x54000000 | ((offset & 0x7ffff) << 5) | cond) >>> 0;
const branch = (offset: number): number => (0x14000000 | (offset & 0x3ffffff)) >>> 0;
/** add sp, xN, #0 (= mov sp, xN). */
const movSp = (rn: number): number => (0x91000000 | (rn << 5) | 31) >>> 0;
const WFI = 0xd503207f;
const COND_NE = 1;

function mov64(rd: number, value: bigint): number[] {
  const halves = [0, 1, 2, 3].map((hw) => Number((value >> BigInt(16 * hw)) & 0xffffn));
  const out = [movz(rd, halves[0]!, 0)];
  for (let hw = 1; hw < 4; hw++) if (halves[hw] !== 0) out.push(movk(rd, halves[hw]!, hw));
  return out;
}

export function buildAarch64Guest(): Buffer {
  const code: number[] = [];
  code.push(...mov64(0, AARCH64_PATTERN_ADDR));
  code.push(...mov64(1, BigInt(AARCH64_PATTERN_REPEAT)));
  code.push(...mov64(2, AARCH64_PATTERN.readBigUInt64LE(0)));
  code.push(...mov64(3, AARCH64_PATTERN.readBigUInt64LE(8)));
  const loop = code.length;
  code.push(strPost(2, 0, 8), strPost(3, 0, 8), subsImm(1, 1, 1));
  code.push(bCond(COND_NE, loop - code.length));
  code.push(...mov64(0, AARCH64_MARKER_ADDR));
  const marker = Buffer.alloc(24);
  AARCH64_MARKER.copy(marker);
  for (let i = 0; i < 3; i++) code.push(...mov64(2, marker.readBigUInt64LE(i * 8)), strPost(2, 0, 8));
  code.push(...mov64(0, AARCH64_SP), movSp(0));
  for (let n = 0; n <= 30; n++) code.push(...mov64(n, aarch64Answer(n)));
  const halt = code.length;
  code.push(WFI, branch(halt - (halt + 1)));
  const out = Buffer.alloc(code.length * 4);
  code.forEach((word, i) => out.writeUInt32LE(word, i * 4));
  return out;
}

/** Byte offset of the final `wfi; b` loop inside the blob: PC is there once the guest is done. */
export function aarch64HaltOffset(): number {
  return buildAarch64Guest().length - 8;
}
