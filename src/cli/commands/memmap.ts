import type { Command } from 'commander';
import { withBundle, loadSections, buildMemmap, humanBytes, type MemmapModel } from '../../analysis';
import { printJson } from '../output/json';
import { renderTable } from '../output/table';

/** `vmpm memmap FILE`: the guest-physical memory map and which parts were captured. */
export function register(program: Command): void {
  program
    .command('memmap')
    .description('show the guest-physical memory map and what of it was captured')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--json', 'print the memory map as JSON')
    .action(async (file: string, options: { json?: boolean }) => {
      const model = await withBundle(file, async (b) => buildMemmap(b, (await loadSections(b)).memmap));
      if (options.json) printJson(model);
      else process.stdout.write(formatMemmap(model));
    });
}

export function formatMemmap(m: MemmapModel): string {
  const out: string[] = [];
  if (m.regions.length === 0) out.push('memory map not recorded in this bundle');
  else
    out.push(
      renderTable(
        ['Region', 'Kind', 'Start', 'End (excl.)', 'Size', 'Captured'],
        m.regions.map((r) => [r.name, r.kind, r.start, r.end, humanBytes(r.size), r.captured ? 'yes' : r.capturedBytes === '0x0' ? 'no' : `partly (${humanBytes(r.capturedBytes)})`]),
        { align: ['left', 'left', 'right', 'right', 'right', 'left'] },
      ),
    );
  out.push('Captured memory:');
  out.push(
    m.captured.length === 0
      ? 'none'
      : renderTable(['Range', 'Start', 'End (excl.)', 'Pages', 'Zero pages'], m.captured.map((c) => [c.name ?? '', c.start, c.end, String(c.pages), String(c.zeroPages)]), {
          align: ['left', 'right', 'right', 'right', 'right'],
        }),
  );
  return `${out.join('\n')}\n`;
}
