import type { Command } from 'commander';
import { withBundle, openKernelView, buildSymbol, type SymbolModel } from '../../analysis';
import { printJson } from '../output/json';

/** `vmpm symbol FILE ADDR|NAME`: kernel symbol of an address, or address of a symbol. */
export function register(program: Command): void {
  program
    .command('symbol')
    .description("resolve a guest kernel address to name+offset, or a name to its address (the kernel's own kallsyms, no debug files)")
    .argument('<file>', 'bundle (.vmpm)')
    .argument('<query>', 'an address (0x...) or a symbol name')
    .option('--system-map <file>', "use this System.map (for kernels whose VMCOREINFO lacks kallsyms); checked against the kernel's _stext")
    .option('--json', 'print the answer as JSON')
    .addHelpText('after', '\nExamples:\n  vmpm symbol crash.vmpm 0xffffffffb3a5c3d6\n  vmpm symbol crash.vmpm sysrq_handle_crash\n  vmpm symbol crash.vmpm 0xffffffff81234567 --system-map /boot/System.map-6.1.0-57-amd64')
    .action(async (file: string, query: string, options: { systemMap?: string; json?: boolean }) => {
      const model = await withBundle(file, async (b) => buildSymbol(await openKernelView(b, { systemMap: options.systemMap }), query));
      if (options.json) printJson(model);
      else process.stdout.write(formatSymbolModel(model));
    });
}

export function formatSymbolModel(m: SymbolModel): string {
  const lines: string[] = [];
  if (m.address !== undefined) lines.push(m.symbol ? `${m.address} <${m.symbol.text}> (${m.symbol.type}, starts at ${m.symbol.start})` : `${m.address}: ${m.note}`);
  for (const s of m.matches ?? []) lines.push(`${s.address} ${s.type} ${s.name}${s.size === undefined ? '' : ` (size ${s.size})`}`);
  const enc = m.symbols.encoding ? `; ${m.symbols.encoding.names}, ${m.symbols.encoding.addresses}` : '';
  lines.push(`(${m.symbols.count} symbols from ${m.symbols.source}${enc}; decoded in ${m.symbols.decodeMs} ms)`);
  return `${lines.join('\n')}\n`;
}
