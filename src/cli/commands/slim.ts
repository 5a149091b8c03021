import type { Command } from 'commander';
import { slimBundle } from '../../custody';
import { abortOnSignals } from '../signals';
import { checkOutputPath } from '../output/write';
import { printJson } from '../output/json';

/** `vmpm slim FILE -o OUT`: everything but the memory contents, page digests kept (format 1.1). */
export function register(program: Command): void {
  program
    .command('slim')
    .description('copy a bundle without its memory contents (page digests kept): kilobytes, fit for any tracker')
    .argument('<file>', 'full bundle (.vmpm)')
    .requiredOption('-o, --output <file>', 'slim bundle to write')
    .option('--no-attachments', 'also leave out attached files (attachment/* sections)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Keeps every section (registers, memory map, errors, events, QMP transcript, VMCOREINFO, kernel log,
attachments) and every page's SHA-256, so \`vmpm diff full.vmpm slim.vmpm\` shows 0 changed pages;
\`read\` and \`search\` on a slim bundle say there are no contents.

Examples:
  vmpm slim crash.vmpm -o crash.slim.vmpm
  vmpm slim crash.vmpm -o crash.slim.vmpm --no-attachments && vmpm report crash.slim.vmpm -o report.md`,
    )
    .action(async (file: string, o: { output: string; attachments: boolean; force?: boolean; json?: boolean }) => {
      checkOutputPath(o.output, o.force === true);
      const signals = abortOnSignals();
      try {
        const r = await slimBundle(file, o.output, { attachments: o.attachments, force: o.force === true, signal: signals.signal });
        if (o.json) printJson(r);
        else {
          process.stdout.write(
            `slim ${r.output} (${r.outputBytes} bytes, from ${r.inputBytes}): ${r.record.pages} page digests kept, no memory contents${r.record.omittedSections.length ? `, ${r.record.omittedSections.length} attachment(s) left out` : ''}\n`,
          );
        }
      } finally {
        signals.dispose();
      }
    });
}
