import type { Command } from 'commander';
import { withBundle, openKernelView, buildStack, type StackModel } from '../../analysis';
import { printJson } from '../output/json';
import { parseSmallInt } from '../output/args';

/** `vmpm stack FILE [--cpu N]`: each vCPU's kernel stack scanned for return addresses. */
export function register(program: Command): void {
  program
    .command('stack')
    .description("scan each vCPU's kernel stack for return addresses into kernel text (a scan, not an unwinder)")
    .argument('<file>', 'bundle (.vmpm)')
    .option('--cpu <n>', 'only this vCPU')
    .option('--system-map <file>', 'use this System.map instead of kallsyms in guest memory')
    .option('--json', 'print the scan as JSON')
    .action(async (file: string, options: { cpu?: string; systemMap?: string; json?: boolean }) => {
      const cpu = options.cpu === undefined ? undefined : parseSmallInt(options.cpu, '--cpu');
      const model = await withBundle(file, async (b) => buildStack(await openKernelView(b, { systemMap: options.systemMap }), cpu));
      if (options.json) printJson(model);
      else process.stdout.write(formatStack(model));
    });
}

export function formatStack(m: StackModel): string {
  const lines = [`(${m.note})`];
  if (m.error) lines.push(`no stack scan: ${m.error}`);
  for (const c of m.cpus) {
    lines.push('');
    const ip = c.ip === undefined ? '' : ` ip ${c.ip}${c.ipSymbol ? ` <${c.ipSymbol}>` : c.ipNote ? ` (${c.ipNote})` : ''}`;
    lines.push(`vCPU ${c.index}:${ip}${c.sp ? ` sp ${c.sp}` : ''}`);
    if (c.error) {
      lines.push(`  no scan: ${c.error}`);
      continue;
    }
    lines.push(' Call Trace (scan):');
    for (const f of c.frames) lines.push(`  ${f.text}  [${f.slot}]`);
    if (c.frames.length === 0) lines.push('  (no return addresses found)');
    lines.push(`  scanned ${c.sp}..${c.scannedTo}: ${c.stoppedBecause}${c.skipped ? `; ${c.skipped} text pointer(s) not after a call skipped` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
