/**
 * Kernel symbols for the code addresses `regs` shows (x86 rip, aarch64 pc and the link register),
 * from kallsyms in guest memory. Best effort: a bundle without VMCOREINFO or with an unreadable symbol
 * table shows its registers exactly as before, without symbols.
 */
import { formatSymbol, type SymbolTable } from '../guestos/linux/symbols';
import { openKernelView } from './kernel';
import type { RegsModel } from './regs';
import type { AnalysisBundle } from './source';

const CODE_REGISTERS: Record<string, string[]> = { x86_64: ['rip'], aarch64: ['pc', 'x30'] };

export async function addRegisterSymbols(bundle: AnalysisBundle, model: RegsModel): Promise<RegsModel> {
  if (model.cpus.length === 0 || !bundle.has('vmcoreinfo')) return model;
  let table: SymbolTable;
  try {
    table = (await (await openKernelView(bundle)).symbols()).table;
  } catch {
    return model;
  }
  for (const cpu of model.cpus) {
    const symbols: Record<string, string> = {};
    for (const name of CODE_REGISTERS[cpu.arch] ?? []) {
      const value = cpu.registers[name];
      if (value === undefined || !/^0x[0-9a-fA-F]{1,16}$/.test(value)) continue;
      const hit = table.lookup(BigInt(value));
      // The kernel's own "name+0x16" form; the size is in `vmpm symbol`.
      if (hit) symbols[name] = formatSymbol({ ...hit, size: undefined });
    }
    if (Object.keys(symbols).length > 0) cpu.symbols = symbols;
  }
  return model;
}
