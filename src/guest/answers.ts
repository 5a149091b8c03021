/**
 * What the built-in boot sector (assets/guests/boot.asm) leaves behind when it panics. Tests and
 * `vmpm demo` compare captures against these; keep them in step with boot.asm.
 */
export interface KnownAnswers {
  /**
   * Canonical lowercase register names (as in bundle/schema.ts CpuState) -> value. The boot sector runs
   * in real mode, so these are 32-bit values that bundles zero-extend into the 64-bit names.
   */
  registers: Record<string, bigint>;
  /** `bytes` at physical address `phys`, repeated `repeat` times back to back (default 1). */
  patterns: Array<{ phys: bigint; bytes: Buffer; repeat?: number }>;
}

export const BOOT_SECTOR_ANSWERS: KnownAnswers = {
  registers: {
    rax: 0xc0ffee01n,
    rbx: 0xbadc0de5n,
    rcx: 0xc0c0c0c0n,
    rdx: 0xd15c0505n,
    rsi: 0x5151aaaan,
    rdi: 0xd1d1bbbbn,
    rbp: 0xb0b0cafen,
    rsp: 0x7c00n,
  },
  patterns: [
    { phys: 0x20000n, bytes: Buffer.from('QMPLAB-PATTERN!\n', 'latin1'), repeat: 4096 },
    { phys: 0x30000n, bytes: Buffer.from('FORENSIC-MARKER-1\0', 'latin1') },
  ],
};
