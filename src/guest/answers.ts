/**
 * What the built-in boot sector (assets/guests/boot.asm) leaves behind when it panics. Tests and
 * `vmpm demo` compare captures against these; keep them in step with boot.asm.
 */
export interface KnownAnswers {
  /** Canonical lowercase register names (as in bundle/schema.ts CpuState) -> value. */
  registers: Record<string, bigint>;
  /** `bytes` at physical address `phys`, repeated `repeat` times back to back (default 1). */
  patterns: Array<{ phys: bigint; bytes: Buffer; repeat?: number }>;
}

export const BOOT_SECTOR_ANSWERS: KnownAnswers = {
  registers: {
    eax: 0xc0ffee01n,
    ebx: 0xbadc0de5n,
    ecx: 0xc0c0c0c0n,
    edx: 0xd15c0505n,
    esi: 0x5151aaaan,
    edi: 0xd1d1bbbbn,
    ebp: 0xb0b0cafen,
    esp: 0x7c00n,
  },
  patterns: [
    { phys: 0x20000n, bytes: Buffer.from('QMPLAB-PATTERN!\n', 'latin1'), repeat: 4096 },
    { phys: 0x30000n, bytes: Buffer.from('FORENSIC-MARKER-1\0', 'latin1') },
  ],
};
