/**
 * `vmpm symbol FILE ADDR|NAME`: the kernel symbol containing an address (name+offset/size, as the
 * kernel prints %pS), or the address of a symbol by name, from kallsyms in guest memory or a System.map.
 */
import { VmpmError } from '../util/errors';
import { parseBigUint, toHex, type Hex } from '../util/hex';
import { formatSymbol } from '../guestos/linux/symbols';
import type { KernelView, LoadedSymbols } from './kernel';

export interface SymbolSourceModel {
  source: string;
  count: number;
  encoding?: { names: string; addresses: string };
  decodeMs: number;
}

export interface SymbolModel {
  query: string;
  symbols: SymbolSourceModel;
  /** Address lookup: the containing symbol, or why there is none. */
  address?: Hex;
  symbol?: { name: string; type: string; start: Hex; offset: Hex; size?: Hex; text: string };
  note?: string;
  /** Name lookup: every symbol of that name. */
  matches?: Array<{ name: string; type: string; address: Hex; size?: Hex }>;
}

export function symbolSourceModel(s: LoadedSymbols): SymbolSourceModel {
  const out: SymbolSourceModel = { source: s.source, count: s.table.count, decodeMs: Math.round(s.ms * 10) / 10 };
  if (s.kallsyms) out.encoding = { names: s.kallsyms.names, addresses: s.kallsyms.addresses };
  return out;
}

/** "0x..." or plain hex of 9+ digits (as copied from a kernel log) is an address; anything else a name. */
export function parseSymbolQuery(query: string): bigint | undefined {
  if (/^0x[0-9a-fA-F_]+$/.test(query)) return parseBigUint(query);
  if (/^[0-9a-fA-F]{9,16}$/.test(query)) return BigInt(`0x${query}`);
  return undefined;
}

export async function buildSymbol(view: KernelView, query: string): Promise<SymbolModel> {
  const loaded = await view.symbols();
  const table = loaded.table;
  const model: SymbolModel = { query, symbols: symbolSourceModel(loaded) };
  const addr = parseSymbolQuery(query);
  if (addr !== undefined) {
    model.address = toHex(addr);
    const hit = table.lookup(addr);
    if (hit) {
      model.symbol = { name: hit.name, type: hit.type, start: toHex(hit.address), offset: toHex(hit.offset), text: formatSymbol(hit) };
      if (hit.size !== undefined) model.symbol.size = toHex(hit.size);
    } else {
      model.note = describeUnsymbolized(addr, table.start, table.end, view.cpus[0]?.arch);
    }
    return model;
  }
  const found = table.find(query);
  if (found.length === 0) throw new VmpmError(`no kernel symbol named ${JSON.stringify(query)} (${table.count} symbols from ${loaded.source})`);
  model.matches = found.map((s) => {
    const hit = table.lookup(s.address);
    const m: { name: string; type: string; address: Hex; size?: Hex } = { name: s.name, type: s.type, address: toHex(s.address) };
    if (hit?.size !== undefined) m.size = toHex(hit.size);
    return m;
  });
  return model;
}

/** Why an address has no symbol, in words a responder can act on. */
export function describeUnsymbolized(addr: bigint, start: bigint, end: bigint, arch: string | undefined): string {
  if (arch === 'x86_64' && addr >= 0xffff_ffff_c000_0000n && addr < 0xffff_ffff_ff00_0000n) {
    return `${toHex(addr)} is in the module area: loadable modules' symbols are not in the kernel's kallsyms`;
  }
  return `${toHex(addr)} is outside the range the kernel's symbol table covers (${toHex(start)}-${toHex(end)}; without CONFIG_KALLSYMS_ALL it holds code only): no kernel symbol`;
}
