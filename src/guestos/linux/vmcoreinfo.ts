/**
 * VMCOREINFO: the text a Linux kernel writes about itself for post-mortem tools (kernel/crash_core.c,
 * arch/*\/kernel/crash_core.c): one `KEY=VALUE` line each, e.g.
 *
 *   OSRELEASE=6.1.0-57-amd64          BUILD-ID=6a2b...      PAGESIZE=4096
 *   SYMBOL(prb)=ffffffffb50643e0      (hex, no 0x: "%lx")
 *   OFFSET(printk_info.seq)=0         SIZE(prb_desc)=24     LENGTH(free_area.free_list)=5   (decimal)
 *   NUMBER(phys_base)=-723517440      (decimal, may be negative; arm64 writes some as 0x-hex)
 *   KERNELOFFSET=32600000             (hex, no 0x)          CRASHTIME=1795956383   (decimal seconds)
 *
 * The text comes from a guest that may be hostile or half-overwritten, so the parser is strict and
 * bounded: at most MAX_TEXT bytes and MAX_LINES lines, printable ASCII only, every typed value checked
 * when parsed (not when used), a key given twice with two values rejected. Accessors throw a
 * VmcoreinfoKeyError naming the missing key, so a caller's error says what the kernel did not publish.
 */
import { VmpmError } from '../../util/errors';

/** The kernel's buffer is one page (VMCOREINFO_BYTES = PAGE_SIZE); 64 KiB covers 64 KiB-page kernels. */
export const MAX_VMCOREINFO_TEXT = 64 * 1024;
const MAX_LINES = 4096;
const MAX_VALUE = 512;
/** The largest OFFSET/SIZE/LENGTH accepted: a struct larger than 1 GiB is corruption, not a kernel. */
const MAX_LAYOUT = 1 << 30;

/** Where a VMCOREINFO text came from, for the "say where it came from" part of every report. */
export type VmcoreinfoSource =
  | { kind: 'section'; name: string }
  | { kind: 'ram'; phys: bigint }
  | { kind: 'other'; description: string };

export class VmcoreinfoError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'VmcoreinfoError';
  }
}

/** A key the caller needs is not in the text (or has the wrong form): names the key. */
export class VmcoreinfoKeyError extends VmcoreinfoError {
  constructor(readonly key: string, problem = 'is missing') {
    super(`VMCOREINFO ${key} ${problem}`);
    this.name = 'VmcoreinfoKeyError';
  }
}

type Kind = 'SYMBOL' | 'NUMBER' | 'OFFSET' | 'SIZE' | 'LENGTH';
const TYPED_RE = /^(SYMBOL|NUMBER|OFFSET|SIZE|LENGTH)\(([A-Za-z0-9_.]{1,128})\)$/;
const PLAIN_KEY_RE = /^[A-Za-z0-9_.-]{1,128}$/;
const HEX_RE = /^[0-9a-fA-F]{1,16}$/;
const DEC_RE = /^-?[0-9]{1,20}$/;
const HEX0X_RE = /^0x[0-9a-fA-F]{1,16}$/;
const INT64_MIN = -(1n << 63n);
const UINT64_MAX = (1n << 64n) - 1n;

export class Vmcoreinfo {
  private constructor(
    /** The text as parsed (NUL padding removed). */
    readonly text: string,
    private readonly entries: ReadonlyMap<string, string>,
    private readonly typed: ReadonlyMap<string, bigint>,
    readonly source: VmcoreinfoSource,
  ) {}

  /** Parses `text` (a string, or the raw bytes of a note/section/page). Throws VmcoreinfoError. */
  static parse(input: string | Buffer, source: VmcoreinfoSource = { kind: 'other', description: 'text' }): Vmcoreinfo {
    const raw = typeof input === 'string' ? input : input.toString('latin1');
    if (raw.length > MAX_VMCOREINFO_TEXT) throw new VmcoreinfoError(`VMCOREINFO is ${raw.length} bytes, more than the ${MAX_VMCOREINFO_TEXT} a kernel writes`);
    // The note is NUL padded to 4 bytes and the kernel buffer is a zeroed page: stop at the first NUL.
    const nul = raw.indexOf('\0');
    const text = nul >= 0 ? raw.slice(0, nul) : raw;
    if (nul >= 0 && /[^\0]/.test(raw.slice(nul))) throw new VmcoreinfoError('VMCOREINFO has bytes after its NUL terminator');
    // eslint-disable-next-line no-control-regex
    const bad = /[^\x20-\x7e\n]/.exec(text);
    if (bad) throw new VmcoreinfoError(`VMCOREINFO has a non-printable byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')} at offset ${bad.index}`);
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    if (lines.length === 0) throw new VmcoreinfoError('VMCOREINFO is empty');
    if (lines.length > MAX_LINES) throw new VmcoreinfoError(`VMCOREINFO has ${lines.length} lines, more than ${MAX_LINES}`);
    const entries = new Map<string, string>();
    const typed = new Map<string, bigint>();
    lines.forEach((line, i) => {
      const eq = line.indexOf('=');
      const where = `VMCOREINFO line ${i + 1}`;
      if (eq <= 0) throw new VmcoreinfoError(`${where} is not KEY=VALUE: ${JSON.stringify(line.slice(0, 60))}`);
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (value.length > MAX_VALUE) throw new VmcoreinfoError(`${where} (${key.slice(0, 60)}) has a ${value.length}-character value`);
      const m = TYPED_RE.exec(key);
      if (!m && !PLAIN_KEY_RE.test(key)) throw new VmcoreinfoError(`${where} has a malformed key ${JSON.stringify(key.slice(0, 60))}`);
      const previous = entries.get(key);
      if (previous !== undefined && previous !== value) throw new VmcoreinfoError(`VMCOREINFO gives ${key} twice (${previous} and ${value})`);
      entries.set(key, value);
      const numeric = m ? typedValue(m[1] as Kind, value) : plainValue(key, value);
      if (numeric === null) throw new VmcoreinfoError(`${where}: ${key}=${JSON.stringify(value.slice(0, 40))} is not a valid ${m ? m[1] : key} value`);
      if (numeric !== undefined) typed.set(key, numeric);
    });
    return new Vmcoreinfo(text, entries, typed, source);
  }

  /** The same text with another source label (e.g. once a RAM copy has been validated). */
  withSource(source: VmcoreinfoSource): Vmcoreinfo {
    return new Vmcoreinfo(this.text, this.entries, this.typed, source);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** All keys in the order the kernel wrote them. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** The raw value of any key, e.g. `raw('OSRELEASE')`, `raw('SYMBOL(prb)')`. */
  raw(key: string): string {
    const v = this.entries.get(key);
    if (v === undefined) throw new VmcoreinfoKeyError(key);
    return v;
  }

  /** SYMBOL(name): a kernel virtual address. */
  symbol(name: string): bigint {
    return this.typedValue(`SYMBOL(${name})`);
  }

  /** NUMBER(name): a signed 64-bit number (phys_base may be negative). */
  number(name: string): bigint {
    return this.typedValue(`NUMBER(${name})`);
  }

  /** OFFSET(struct.field): a byte offset inside a structure. */
  offset(name: string): number {
    return Number(this.typedValue(`OFFSET(${name})`));
  }

  /** SIZE(struct): the size of a structure in bytes. */
  size(name: string): number {
    return Number(this.typedValue(`SIZE(${name})`));
  }

  /** LENGTH(array): an array's element count. */
  length(name: string): number {
    return Number(this.typedValue(`LENGTH(${name})`));
  }

  /** Optional forms: undefined when the kernel did not publish the key. */
  symbolIfAny(name: string): bigint | undefined {
    return this.typed.get(`SYMBOL(${name})`);
  }
  numberIfAny(name: string): bigint | undefined {
    return this.typed.get(`NUMBER(${name})`);
  }
  offsetIfAny(name: string): number | undefined {
    const v = this.typed.get(`OFFSET(${name})`);
    return v === undefined ? undefined : Number(v);
  }
  sizeIfAny(name: string): number | undefined {
    const v = this.typed.get(`SIZE(${name})`);
    return v === undefined ? undefined : Number(v);
  }
  lengthIfAny(name: string): number | undefined {
    const v = this.typed.get(`LENGTH(${name})`);
    return v === undefined ? undefined : Number(v);
  }

  /** `uname -r` of the kernel, e.g. "6.1.0-57-amd64". */
  get osRelease(): string | undefined {
    return this.entries.get('OSRELEASE');
  }
  /** The kernel's GNU build id (hex), when it published one (5.9+). */
  get buildId(): string | undefined {
    return this.entries.get('BUILD-ID');
  }
  get pageSize(): number | undefined {
    const v = this.typed.get('PAGESIZE');
    return v === undefined ? undefined : Number(v);
  }
  /** The KASLR offset (KERNELOFFSET; 0 for a kernel loaded at its link address). */
  get kernelOffset(): bigint | undefined {
    return this.typed.get('KERNELOFFSET');
  }
  /** CRASHTIME: seconds since the epoch when the kernel crashed (present only after a crash). */
  get crashTime(): number | undefined {
    const v = this.typed.get('CRASHTIME');
    return v === undefined ? undefined : Number(v);
  }

  private typedValue(key: string): bigint {
    const v = this.typed.get(key);
    if (v === undefined) throw new VmcoreinfoKeyError(key);
    return v;
  }
}

/** Parses a typed value; null when malformed. */
function typedValue(kind: Kind, value: string): bigint | null {
  switch (kind) {
    case 'SYMBOL':
      // "%lx"; tolerate a 0x some out-of-tree code writes.
      return HEX_RE.test(value) ? BigInt(`0x${value}`) : HEX0X_RE.test(value) ? BigInt(value) : null;
    case 'NUMBER': {
      const v = number(value);
      return v !== null && v >= INT64_MIN && v <= UINT64_MAX ? v : null;
    }
    default: {
      const v = number(value);
      return v !== null && v >= 0n && v <= BigInt(MAX_LAYOUT) ? v : null;
    }
  }
}

/** The untyped keys that carry numbers; other plain keys (OSRELEASE, BUILD-ID, CONFIG_*) stay text. */
function plainValue(key: string, value: string): bigint | null | undefined {
  switch (key) {
    case 'KERNELOFFSET':
      return HEX_RE.test(value) ? BigInt(`0x${value}`) : null;
    case 'PAGESIZE': {
      const v = number(value);
      return v !== null && v > 0n && v <= 1n << 30n && (v & (v - 1n)) === 0n ? v : null;
    }
    case 'CRASHTIME': {
      const v = number(value);
      return v !== null && v >= 0n && v < 1n << 40n ? v : null;
    }
    case 'OSRELEASE':
      return value.length > 0 && value.length <= 64 ? undefined : null;
    case 'BUILD-ID':
      return /^[0-9a-f]{2,128}$/.test(value) ? undefined : null;
    default:
      return undefined;
  }
}

/** Decimal (possibly negative) or 0x-hex, as the kernel's "%ld"/"%lu"/"0x%llx" print them. */
function number(value: string): bigint | null {
  if (DEC_RE.test(value)) return BigInt(value);
  if (HEX0X_RE.test(value)) return BigInt(value);
  return null;
}

/** The part of an opened bundle this needs (BundleReader has it). */
export interface SectionSource {
  readonly path: string;
  has(name: string): boolean;
  raw(name: string): Promise<Buffer>;
}

/** Name of the bundle section capture writes the VMCOREINFO note into (bundle/schema SECTION.vmcoreinfo). */
export const VMCOREINFO_SECTION = 'vmcoreinfo';

/**
 * The bundle's VMCOREINFO section, parsed; undefined when the bundle has none (the guest ran without
 * `-device vmcoreinfo`: see vmcoreinfo-scan.ts for finding the text in RAM). A section that is there
 * but malformed is an error naming the bundle.
 */
export async function vmcoreinfoFromBundle(bundle: SectionSource): Promise<Vmcoreinfo | undefined> {
  if (!bundle.has(VMCOREINFO_SECTION)) return undefined;
  const data = await bundle.raw(VMCOREINFO_SECTION);
  try {
    return Vmcoreinfo.parse(data, { kind: 'section', name: VMCOREINFO_SECTION });
  } catch (err) {
    if (err instanceof VmcoreinfoError) throw new VmcoreinfoError(`${bundle.path}: section ${VMCOREINFO_SECTION}: ${err.message}`);
    throw err;
  }
}

/** Human words for where the text came from ("the bundle's vmcoreinfo section", "guest RAM at 0x..."). */
export function describeVmcoreinfoSource(source: VmcoreinfoSource): string {
  switch (source.kind) {
    case 'section':
      return `the bundle's ${source.name} section`;
    case 'ram':
      return `guest RAM at physical 0x${source.phys.toString(16)} (no vmcoreinfo section; found by scanning and checked against the kernel image)`;
    default:
      return source.description;
  }
}
