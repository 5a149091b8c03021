import type { Command } from 'commander';
import { withBundle, loadSections, buildErrors, loadGuestKernel, withKernelFaults, type ErrorsModel } from '../../analysis';
import { printJson } from '../output/json';
import { renderTable } from '../output/table';
import { palette, severityColor } from '../output/color';

/** `vmpm errors FILE`: the normalised error records as a timeline. */
export function register(program: Command): void {
  program
    .command('errors')
    .description("list the error records (panics, I/O errors, memory failures ...) as a timeline, with the faults the guest kernel logged (machine checks decoded, I/O errors, lockups, OOM kills)")
    .argument('<file>', 'bundle (.vmpm)')
    .option('--json', 'print the records as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const model = await withBundle(file, async (b) => withKernelFaults(buildErrors((await loadSections(b)).errors), await loadGuestKernel(b)));
      if (o.json) printJson(model);
      else process.stdout.write(formatErrors(model));
    });
}

export function formatErrors(m: ErrorsModel): string {
  if (!m.recorded) return 'error records were not recorded in this bundle\n';
  if (m.records.length === 0) return 'no error records\n';
  const p = palette();
  return `${renderTable(
    ['Time', 'Severity', 'Kind', 'Source', 'Device', 'Summary'],
    m.records.map((r) => [r.time, severityColor(p, r.severity), r.kind, r.source, r.device ?? '', r.summary]),
  )}\n`;
}
