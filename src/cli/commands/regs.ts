import type { Command } from 'commander';
import { withBundle, loadSections, buildRegs, addRegisterSymbols, type RegsCpu, type RegsModel } from '../../analysis';
import { printJson } from '../output/json';
import { palette, type Palette } from '../output/color';
import { parseSmallInt } from '../output/args';

/** `vmpm regs FILE [--cpu N]`: grouped registers with decoded flags, per vCPU. */
export function register(program: Command): void {
  program
    .command('regs')
    .description('show vCPU registers, grouped, with decoded flags and CPU mode')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--cpu <n>', 'only this vCPU (QEMU cpu-index)')
    .option('--json', 'print registers as JSON')
    .action(async (file: string, options: { cpu?: string; json?: boolean }) => {
      const cpu = options.cpu === undefined ? undefined : parseSmallInt(options.cpu, '--cpu');
      const model = await withBundle(file, async (b) => {
        const s = await loadSections(b);
        return addRegisterSymbols(b, buildRegs(s.cpus, cpu, s.manifest));
      });
      if (options.json) printJson(model);
      else process.stdout.write(model.cpus.length === 0 ? 'no vCPU registers recorded in this bundle\n' : formatRegs(model, palette()));
    });
}

/** Where the registers came from, then each vCPU. */
export function formatRegs(model: RegsModel, p: Palette): string {
  const source = model.source ? `${p.cyan('registers from:')} ${model.source.text}\n\n` : '';
  return `${source}${model.cpus.map((c) => formatCpu(c, p)).join('\n\n')}\n`;
}

export function formatCpu(c: RegsCpu, p: Palette): string {
  const head = [`vCPU ${c.index}`, c.arch, `${c.mode}${c.arch === 'aarch64' ? '' : ' mode'}`];
  if (c.exceptionLevel !== undefined) head.push(`EL${c.exceptionLevel}`);
  if (c.halted) head.push('halted');
  const lines = [p.bold(head.join('  '))];
  for (const g of c.groups) {
    lines.push(p.cyan(`${g.title}:`));
    // Segments (cs.selector, cs.base, ...): one segment per row, its fields in aligned columns, so a
    // field never wraps beside another segment's.
    if (g.names.length > 0 && g.names.every((n) => n.includes('.'))) {
      lines.push(...structRows(g.names, c.registers));
      continue;
    }
    const plain = g.names.map((n) => `${n.padStart(Math.min(12, maxLen(g.names)))}=${c.registers[n]}`);
    // A code address gets its kernel symbol after it; the column width stays that of the plain cells.
    const cells = plain.map((cell, i) => (c.symbols?.[g.names[i]!] ? `${cell} <${c.symbols[g.names[i]!]}>` : cell));
    // Wide values (xmm, st) one per line; 64-bit ones several per line.
    const width = Math.max(...plain.map((s) => s.length));
    const perLine = Math.max(1, Math.floor(100 / (width + 2)));
    for (let i = 0; i < cells.length; i += perLine) lines.push(`  ${cells.slice(i, i + perLine).map((s) => s.padEnd(width)).join('  ').trimEnd()}`);
  }
  if (c.flags.length > 0) {
    lines.push(p.cyan('decoded:'));
    for (const f of c.flags) lines.push(`  ${f.register.padEnd(7)} ${f.value.padEnd(12)} ${f.text || f.set.join(' ') || '(none set)'}`);
  }
  return lines.join('\n');
}

/** Rows of `prefix.field=value` cells, one prefix per row, each field column padded to its widest cell. */
function structRows(names: string[], registers: Record<string, string>): string[] {
  const rows = new Map<string, string[]>();
  for (const n of names) {
    const prefix = n.slice(0, n.indexOf('.'));
    rows.set(prefix, [...(rows.get(prefix) ?? []), n]);
  }
  const prefixWidth = Math.max(...[...rows.keys()].map((k) => k.length));
  const cells = [...rows.entries()].map(([prefix, fields]) => fields.map((n, i) => `${i === 0 ? n.padStart(prefixWidth + n.length - prefix.length) : n}=${registers[n]}`));
  const columns = Math.max(...cells.map((r) => r.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  return cells.map((r) => `  ${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}`);
}

function maxLen(names: string[]): number {
  return Math.max(...names.map((n) => n.length));
}
