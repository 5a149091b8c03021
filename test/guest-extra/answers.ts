/** Known answers of assets/guests/lm.asm (keep in sync with its header comment). */
export const LONG_MODE_ANSWERS = {
  registers: {
    rax: 0xc0ffee00c0ffee01n,
    rbx: 0xbadc0de5badc0de5n,
    rcx: 0xc0c0c0c0c0c0c0c0n,
    rdx: 0xd15cd15cd15c0505n,
    rsi: 0x5151aaaa5151aaaan,
    rdi: 0xd1d1bbbbd1d1bbbbn,
    rbp: 0xb0b0cafeb0b0cafen,
    rsp: 0xffff800000007c00n,
    r8: 0x0808080808080808n,
    r9: 0x0909090909090909n,
    r10: 0x1010101010101010n,
    r11: 0x1111111111111111n,
    r12: 0x1212121212121212n,
    r13: 0x1313131313131313n,
    r14: 0x1414141414141414n,
    r15: 0x1515151515151515n,
    cr3: 0x1000n,
    efer: 0x500n,
  } as Record<string, bigint>,
  /** The halt loop (cli; hlt; jmp) in the higher-half alias: RIP is inside it after the panic. */
  haltLoop: { from: 0xffff800000007d71n, to: 0xffff800000007d76n },
  patterns: [
    { phys: 0x20000n, bytes: Buffer.from('VMPM-LONGMODE-64', 'latin1'), repeat: 4096 },
    { phys: 0x30000n, bytes: Buffer.from('LONG-MODE-MARKER\0', 'latin1'), repeat: 1 },
  ],
};
