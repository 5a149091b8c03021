import type { Command } from 'commander';
import { withBundle, withBundles, buildBundleReport, buildDiffReport, renderReport, type ReportFormat } from '../../analysis';
import { UsageError } from '../../util/errors';
import { writeTextOutput } from '../output/write';

interface ReportOptions {
  format?: string;
  output?: string;
  against?: string;
  force?: boolean;
  verify: boolean;
}

const FORMATS: ReportFormat[] = ['md', 'html', 'json'];

/** --format wins; otherwise the -o extension (.html/.htm, .json); otherwise Markdown. */
export function chooseFormat(format: string | undefined, output: string | undefined): ReportFormat {
  if (format !== undefined) {
    const f = format.toLowerCase() === 'markdown' ? 'md' : format.toLowerCase();
    if (!FORMATS.includes(f as ReportFormat)) throw new UsageError(`--format must be md, html or json, got ${JSON.stringify(format)}`);
    return f as ReportFormat;
  }
  if (output && /\.html?$/i.test(output)) return 'html';
  if (output && /\.json$/i.test(output)) return 'json';
  return 'md';
}

/** `vmpm report FILE` and `vmpm report B --against A`: an incident report in Markdown, HTML or JSON. */
export function register(program: Command): void {
  program
    .command('report')
    .description('write an incident report (Markdown for issues, self-contained HTML, or JSON); --against makes a diff report')
    .argument('<file>', 'bundle (.vmpm); with --against, the newer bundle')
    .option('--format <fmt>', 'md, html or json (default: from the -o extension, else md)')
    .option('-o, --output <file>', 'write the report to this file instead of stdout')
    .option('--force', 'overwrite the -o file if it exists')
    .option('--against <baseline>', 'diff report: compare FILE against this older bundle')
    .option('--no-verify', 'do not check every digest (the SHA-256 is still computed)')
    .addHelpText('after', '\nExamples:\n  vmpm report crash.vmpm > report.md\n  vmpm report crash.vmpm -o report.html\n  vmpm report after.vmpm --against before.vmpm --format html -o diff.html')
    .action(async (file: string, o: ReportOptions) => {
      const format = chooseFormat(o.format, o.output);
      const text = o.against
        ? await withBundles(o.against, file, async (a, b) => renderReport(await buildDiffReport(a, b, { verify: o.verify }), format))
        : await withBundle(file, async (b) => renderReport(await buildBundleReport(b, { verify: o.verify }), format));
      await writeTextOutput(text, o.output, o.force === true);
    });
}
