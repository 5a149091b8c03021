/**
 * A kernel symbol table (from kallsyms in guest memory, or from a System.map file) with the lookups
 * the kernel itself makes: address -> name+offset/size (get_symbol_pos: the first of aliased
 * symbols, size up to the next higher address) and name -> address.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';

export interface KernelSymbol {
  name: string;
  /** nm-style type: t/T text, d/D data, r/R rodata, b/B bss, A absolute ... */
  type: string;
  address: bigint;
}

export interface SymbolHit {
  name: string;
  type: string;
  address: bigint;
  offset: bigint;
  /** Distance to the next higher symbol (the kernel's "/size"); undefined for the last one. */
  size?: bigint;
}

/**
 * Symbols in ascending address order as parallel arrays: ~100,000 kernel symbols as objects with
 * bigint fields cost more in allocation and garbage collection than decoding them. Names may be
 * produced on demand (kallsyms expands a name only when it is looked up).
 */
export class SymbolTable {
  private byName?: Map<string, number[]>;
  /** Lowest and highest address lookups by address answer for (the kernel image, _text.._end). */
  readonly start: bigint;
  readonly end: bigint;

  private constructor(
    private readonly addresses: BigUint64Array,
    private readonly types: Uint8Array,
    private readonly nameAt: (i: number) => string,
    readonly source: 'kallsyms' | 'system-map',
    known: { text?: number; end?: number },
  ) {
    const n = addresses.length;
    this.start = known.text !== undefined ? addresses[known.text]! : addresses[0]!;
    this.end = known.end !== undefined ? addresses[known.end]! : addresses[n - 1]!;
  }

  /**
   * Symbols in the kernel's own order, which must be ascending by address (kallsyms sorts them).
   * `textIndex`/`endIndex`: where _text (or _stext) and _end are, bounding address lookups.
   */
  static fromArrays(
    addresses: BigUint64Array,
    types: Uint8Array,
    nameAt: (i: number) => string,
    source: 'kallsyms' | 'system-map',
    known: { text?: number; end?: number } = {},
  ): SymbolTable {
    if (addresses.length === 0) throw new VmpmError('the symbol table is empty');
    for (let i = 1; i < addresses.length; i++) {
      if (addresses[i]! < addresses[i - 1]!) {
        throw new VmpmError(
          `${source} addresses are not in ascending order at symbol ${i} (${nameAt(i)} ${toHex(addresses[i]!)} after ${nameAt(i - 1)} ${toHex(addresses[i - 1]!)}): the table is damaged`,
        );
      }
    }
    return new SymbolTable(addresses, types, nameAt, source, known);
  }

  static fromSymbols(symbols: KernelSymbol[], source: 'kallsyms' | 'system-map'): SymbolTable {
    const addresses = BigUint64Array.from(symbols.map((s) => s.address));
    const types = Uint8Array.from(symbols.map((s) => s.type.charCodeAt(0)));
    const index = (n: string) => {
      const i = symbols.findIndex((s) => s.name === n);
      return i < 0 ? undefined : i;
    };
    return SymbolTable.fromArrays(addresses, types, (i) => symbols[i]!.name, source, { text: index('_text') ?? index('_stext'), end: index('_end') });
  }

  get count(): number {
    return this.addresses.length;
  }

  symbol(i: number): KernelSymbol {
    return { name: this.nameAt(i), type: String.fromCharCode(this.types[i]!), address: this.addresses[i]! };
  }

  /** The symbol containing `addr`, like the kernel's %pS; undefined outside the kernel image. */
  lookup(addr: bigint): SymbolHit | undefined {
    if (addr < this.start || addr > this.end) return undefined;
    const a = this.addresses;
    let low = 0;
    let high = a.length;
    while (high - low > 1) {
      const mid = (low + high) >>> 1;
      if (a[mid]! <= addr) low = mid;
      else high = mid;
    }
    if (a[low]! > addr) return undefined;
    while (low > 0 && a[low - 1] === a[low]) low--;
    const s = this.symbol(low);
    let next: bigint | undefined;
    for (let i = low + 1; i < a.length; i++) {
      if (a[i]! > s.address) {
        next = a[i]!;
        break;
      }
    }
    const hit: SymbolHit = { ...s, offset: addr - s.address };
    if (next !== undefined) hit.size = next - s.address;
    return hit;
  }

  /** Every symbol of that name (static functions may share one), in address order. */
  find(name: string): KernelSymbol[] {
    if (this.byName === undefined) {
      const map = new Map<string, number[]>();
      for (let i = 0; i < this.count; i++) {
        const n = this.nameAt(i);
        const list = map.get(n);
        if (list) list.push(i);
        else map.set(n, [i]);
      }
      this.byName = map;
    }
    return (this.byName.get(name) ?? []).map((i) => this.symbol(i));
  }

  /** Whether `addr` is inside a text (code) symbol of the kernel image. */
  isText(addr: bigint): boolean {
    const hit = this.lookup(addr);
    return hit !== undefined && hit.size !== undefined && hit.offset < hit.size && /^[tTwW]$/.test(hit.type);
  }
}

/** "name+0x16/0x60" as the kernel prints %pS / %pB. */
export function formatSymbol(hit: SymbolHit): string {
  return `${hit.name}+${toHex(hit.offset)}${hit.size === undefined ? '' : `/${toHex(hit.size)}`}`;
}
