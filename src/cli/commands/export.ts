import type { Command } from 'commander';
import { resolve } from 'node:path';
import { EXPORT_FORMATS, exportBundle, type ExportFormat } from '../../interop/export';
import { humanBytes } from '../../util/bytes';
import { UsageError } from '../../util/errors';
import { printJson } from '../output/json';
import { createProgressBar } from '../progress';
import { abortOnSignals } from '../signals';

interface ExportCommandOptions {
  format: string;
  output: string;
  force?: boolean;
  json?: boolean;
}

/** `vmpm export FILE --format elf|kdump|raw -o OUT`: a bundle in a format crash, gdb, drgn and makedumpfile read. */
export function register(program: Command): void {
  program
    .command('export')
    .description('write a bundle\'s memory and vCPU state as an ELF core, a kdump-compressed file or a raw image')
    .argument('<file>', 'bundle (.vmpm)')
    .requiredOption('--format <format>', 'elf (gdb, drgn, crash, makedumpfile), kdump (crash, makedumpfile) or raw (+ OUT.ranges.json)')
    .requiredOption('-o, --output <file>', 'file to write')
    .option('--force', 'overwrite an existing output')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  vmpm export crash.vmpm --format elf -o crash.elf && makedumpfile --dump-dmesg crash.elf dmesg.txt
  vmpm export crash.vmpm --format kdump -o vmcore && crash vmlinux vmcore
  vmpm export crash.vmpm --format raw -o ram.img      # + ram.img.ranges.json`,
    )
    .action(async (file: string, o: ExportCommandOptions) => {
      if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
        throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got ${JSON.stringify(o.format)}`);
      }
      const progress = o.json ? undefined : createProgressBar();
      const signals = abortOnSignals();
      try {
        const result = await exportBundle(file, {
          format: o.format as ExportFormat,
          output: resolve(o.output),
          force: o.force === true,
          signal: signals.signal,
          onProgress: (done, total) => progress?.update({ phase: 'memory', done: done * 4096, total: total * 4096 }),
        });
        progress?.done();
        if (o.json) {
          printJson(result);
          return;
        }
        for (const w of result.warnings) process.stderr.write(`vmpm: warning: ${w}\n`);
        const side = result.sideFile ? ` (+ ${result.sideFile})` : '';
        process.stdout.write(
          `exported ${file} as ${result.format}: ${result.cpus} vCPU${result.cpus === 1 ? '' : 's'}, ${result.ranges} range${result.ranges === 1 ? '' : 's'}, ` +
            `${result.dataPages} data + ${result.zeroPages} zero pages -> ${result.output}${side} (${humanBytes(Number(BigInt(result.fileSize)))}) in ${(result.durationMs / 1000).toFixed(2)} s\n`,
        );
      } finally {
        progress?.done();
        signals.dispose();
      }
    });
}
