/**
 * A kernel's System.map (`nm -n vmlinux` output: "ffffffff81000000 T _text"), for kernels whose
 * VMCOREINFO does not publish kallsyms. The map holds link-time addresses: a KASLR kernel's symbols
 * are shifted by VMCOREINFO's KERNELOFFSET, and the result must reproduce SYMBOL(_stext), else the
 * map belongs to another build and is refused.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import { SymbolTable, type KernelSymbol } from './symbols';

/** A System.map of a large kernel is ~10 MB; refuse anything far bigger. */
export const MAX_SYSTEM_MAP_BYTES = 256 << 20;
const LINE_RE = /^([0-9a-fA-F]{1,16}) ([A-Za-z?]) (\S{1,512})$/;

export interface SystemMapCheck {
  /** KERNELOFFSET applied (0 when none). */
  offset: bigint;
  /** SYMBOL(_stext) from VMCOREINFO, if any, that the map was checked against. */
  stext?: bigint;
}

export function parseSystemMap(text: string, name: string, check: SystemMapCheck): SymbolTable {
  // Debian's linux-image packages ship a one-line stand-in: "ffffffffffffffff B The real System.map is in ...".
  if (/^[0-9a-f]+ [A-Za-z] The real System\.map is in/.test(text)) {
    throw new VmpmError(`${name} is Debian's placeholder System.map, not a symbol table (the real one is in the linux-image-*-dbg package)`);
  }
  const symbols: KernelSymbol[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '') continue;
    const m = LINE_RE.exec(line);
    if (!m) throw new VmpmError(`${name}: line ${i + 1} is not "ADDRESS TYPE NAME": ${JSON.stringify(line.slice(0, 60))}`);
    const raw = BigInt(`0x${m[1]}`);
    // Absolute symbols (A: per-cpu offsets and the like) do not move with KASLR.
    const address = m[2] === 'A' || m[2] === 'a' ? raw : (raw + check.offset) & ((1n << 64n) - 1n);
    symbols.push({ name: m[3]!, type: m[2]!, address });
  }
  if (symbols.length === 0) throw new VmpmError(`${name}: no symbols`);
  symbols.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const table = SymbolTable.fromSymbols(symbols, 'system-map');
  if (check.stext !== undefined) {
    const stext = table.find('_stext')[0];
    if (stext === undefined) throw new VmpmError(`${name}: has no _stext symbol to check it against this kernel`);
    if (stext.address !== check.stext) {
      throw new VmpmError(
        `${name} does not belong to this kernel: its _stext is ${toHex(stext.address - check.offset)} (+ KERNELOFFSET ${toHex(check.offset)} = ${toHex(stext.address)}), VMCOREINFO says ${toHex(check.stext)}`,
      );
    }
  }
  return table;
}
