/**
 * The register state of one vCPU as the bundle's `cpus` section stores it. Declared here, in the layer
 * that parses it, so arch does not reach up into bundle (bundle/schema.ts re-exports it).
 */
import type { Hex } from '../util/hex';

/** Registers of one vCPU. Names are canonical lowercase; composite registers use dotted names. */
export interface CpuState {
  /** QEMU cpu-index. */
  index: number;
  arch: 'x86_64' | 'aarch64' | string;
  /**
   * x86: "real" | "protected" | "long" (from CR0.PE and EFER.LMA, in that order).
   * aarch64: the PSTATE mode text in lowercase, e.g. "el1h", "el0t".
   */
  mode: string;
  /** aarch64 exception level 0-3; absent on x86. */
  exceptionLevel?: number;
  halted?: boolean;
  /**
   * Flat map name -> hex value. x86_64: rax..r15, rip, rflags, cs.selector / cs.base / cs.limit /
   * cs.flags (likewise ds es fs gs ss ldtr tr), gdt.base, gdt.limit, idt.base, idt.limit, cr0, cr2,
   * cr3, cr4, efer, dr0..dr7, fcw, fsw, ftw, mxcsr, st0..st7 (80-bit), xmm0..xmm15 (128-bit).
   * 32-bit values are zero-extended into the 64-bit names. aarch64: x0..x30, sp, pc, pstate.
   */
  registers: Record<string, Hex>;
  /** QEMU's `info registers` text for this vCPU, verbatim, so nothing parsed away is lost. */
  raw: string;
  /** From query-cpus-fast. */
  qomPath?: string;
  threadId?: number;
}
