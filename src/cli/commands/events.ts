import type { Command } from 'commander';
import { withBundle, loadSections, buildEvents, eventSummary, type EventsModel } from '../../analysis';
import { printJson } from '../output/json';
import { renderTable } from '../output/table';

/** `vmpm events FILE`: the QMP event journal as a timeline. */
export function register(program: Command): void {
  program
    .command('events')
    .description('list the QMP events recorded in the bundle, oldest first')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--json', 'print the journal as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const model = await withBundle(file, async (b) => buildEvents((await loadSections(b)).events));
      if (o.json) printJson(model);
      else process.stdout.write(formatEvents(model));
    });
}

export function formatEvents(m: EventsModel): string {
  if (!m.recorded) return 'the event journal was not recorded in this bundle\n';
  if (m.events.length === 0) return 'no events\n';
  const note = m.dropped > 0 ? `(${m.dropped} older events were dropped from the rolling journal)\n` : '';
  return `${note}${renderTable(['Time', 'Event', 'Data'], m.events.map((e) => [e.time, e.event, eventSummary(e)]))}\n`;
}
