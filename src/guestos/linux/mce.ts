/**
 * x86 machine-check bank status (IA32_MCi_STATUS), decoded the way the Intel SDM (vol. 3B, 15.3.2.2 and
 * 15.9) and AMD's APM define it: the flag bits that say whether the error is valid, uncorrected,
 * enabled, whether MISC/ADDR hold data, whether processor context is corrupt, and (with software error
 * recovery) whether the kernel must act; then the 16-bit MCA error code.
 */

export interface McStatus {
  status: bigint;
  /** Bit 63: the register holds a valid error. */
  val: boolean;
  /** 62: an earlier error was overwritten. */
  over: boolean;
  /** 61: uncorrected. */
  uc: boolean;
  /** 60: error reporting was enabled for it. */
  en: boolean;
  /** 59: MCi_MISC holds data. */
  miscv: boolean;
  /** 58: MCi_ADDR holds the address. */
  addrv: boolean;
  /** 57: processor context corrupt: execution cannot safely continue. */
  pcc: boolean;
  /** 56: signalled as a machine check (software error recovery). */
  s: boolean;
  /** 55: action required. */
  ar: boolean;
  /** Bits 15:0. */
  mcaCode: number;
  /** Bits 31:16. */
  modelCode: number;
  /** The set flags by name, in bit order: ["VAL", "UC", "EN", "PCC"]. */
  flags: string[];
  /** The MCA error code in words: "cache hierarchy error: L1 data cache, evict". */
  description: string;
  /** critical: PCC, or UC with AR; error: other uncorrected; warning: corrected. */
  severity: 'critical' | 'error' | 'warning';
}

const BITS: Array<[keyof McStatus, string, number]> = [
  ['val', 'VAL', 63],
  ['over', 'OVER', 62],
  ['uc', 'UC', 61],
  ['en', 'EN', 60],
  ['miscv', 'MISCV', 59],
  ['addrv', 'ADDRV', 58],
  ['pcc', 'PCC', 57],
  ['s', 'S', 56],
  ['ar', 'AR', 55],
];

export function decodeMcStatus(status: bigint): McStatus {
  const bit = (n: number): boolean => ((status >> BigInt(n)) & 1n) === 1n;
  const flags = BITS.filter(([, , n]) => bit(n)).map(([, name]) => name);
  const mcaCode = Number(status & 0xffffn);
  const d: McStatus = {
    status,
    val: bit(63),
    over: bit(62),
    uc: bit(61),
    en: bit(60),
    miscv: bit(59),
    addrv: bit(58),
    pcc: bit(57),
    s: bit(56),
    ar: bit(55),
    mcaCode,
    modelCode: Number((status >> 16n) & 0xffffn),
    flags,
    description: describeMcaCode(mcaCode),
    severity: 'warning',
  };
  d.severity = d.pcc || (d.uc && d.ar) ? 'critical' : d.uc ? 'error' : 'warning';
  return d;
}

const LEVEL = ['L0', 'L1', 'L2', 'generic level'];
const TRANSACTION = ['instruction', 'data', 'generic'];
const REQUEST = ['generic', 'read', 'write', 'data read', 'data write', 'instruction fetch', 'prefetch', 'evict', 'snoop'];

/** The SDM's simple and compound MCA error codes (bit 12, the corrected-error filter flag, ignored). */
export function describeMcaCode(code: number): string {
  const simple: Record<number, string> = {
    0x0000: 'no error',
    0x0001: 'unclassified error',
    0x0002: 'microcode ROM parity error',
    0x0003: 'external error (BINIT# from another processor)',
    0x0004: 'functional redundancy check error',
    0x0005: 'internal parity error',
    0x0006: 'SMM handler code access violation',
  };
  if (code in simple) return simple[code]!;
  if (code === 0x0400) return 'internal timer error';
  if ((code & 0xfc00) === 0x0400) return 'internal unclassified error';
  const c = code & ~0x1000;
  const ll = LEVEL[c & 3]!;
  const tt = TRANSACTION[(c >> 2) & 3] ?? 'reserved';
  if ((c & 0xfffc) === 0x000c) return `generic cache hierarchy error: ${ll}`;
  if ((c & 0xfff0) === 0x0010) return `TLB error: ${ll} ${tt}`;
  if ((c & 0xff80) === 0x0080) {
    const mmm = ['generic', 'read', 'write', 'address/command', 'memory scrubbing'][(c >> 4) & 7] ?? 'reserved';
    const channel = c & 0xf;
    return `memory controller error: ${mmm}${channel === 0xf ? '' : `, channel ${channel}`}`;
  }
  if ((c & 0xff00) === 0x0100) return `cache hierarchy error: ${ll} ${tt}, ${REQUEST[(c >> 4) & 0xf] ?? 'reserved request'}`;
  if ((c & 0xf800) === 0x0800) return `bus/interconnect error: ${ll}, ${REQUEST[(c >> 4) & 0xf] ?? 'reserved request'}`;
  return `model-specific or reserved code 0x${code.toString(16).padStart(4, '0')}`;
}
