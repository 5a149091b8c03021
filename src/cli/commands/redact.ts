import type { Command } from 'commander';
import { redactBundle, PATTERN_MAX_MATCH, type RedactOptions } from '../../custody';
import { UsageError } from '../../util/errors';
import { parseBigUint } from '../../util/hex';
import { abortOnSignals } from '../signals';
import { checkOutputPath } from '../output/write';
import { printJson } from '../output/json';
import { parseSmallInt } from '../output/args';

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** "START-END" (END exclusive), each hex (0x...) or decimal, with K/M/G suffixes as elsewhere. */
export function parseSpan(text: string, flag: string): { start: bigint; end: bigint } {
  const m = /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(text);
  const start = m ? parseBigUint(m[1]!) : undefined;
  const end = m ? parseBigUint(m[2]!) : undefined;
  if (start === undefined || end === undefined) throw new UsageError(`${flag} ${JSON.stringify(text)}: expected START-END, e.g. 0x100000-0x200000`);
  if (end <= start) throw new UsageError(`${flag} ${text}: END must be above START (END is exclusive)`);
  if (end > 1n << 64n) throw new UsageError(`${flag} ${text}: END is past the 64-bit address space`);
  return { start, end };
}

interface RedactCommandOptions {
  output: string;
  range: string[];
  virt: string[];
  cpu?: string;
  pattern: string[];
  reason?: string;
  force?: boolean;
  json?: boolean;
}

/** `vmpm redact FILE -o OUT (--range | --virt | --pattern)...`: erase bytes, record what and why. */
export function register(program: Command): void {
  program
    .command('redact')
    .description('copy a bundle with chosen memory erased (reads as zeros); record what, why, by whom, and the original page digests')
    .argument('<file>', 'bundle (.vmpm)')
    .requiredOption('-o, --output <file>', 'redacted bundle to write')
    .option('--range <start-end>', 'erase guest-physical bytes [START, END) (repeatable)', collect, [])
    .option('--virt <start-end>', 'erase the pages backing guest-virtual [START, END) in --cpu\'s page tables (repeatable)', collect, [])
    .option('--cpu <n>', 'vCPU whose page tables resolve --virt (default: the first)')
    .option('--pattern <re>', `erase every match of this JavaScript regular expression over bytes as latin1 (up to ${PATTERN_MAX_MATCH} bytes a match; repeatable)`, collect, [])
    .option('--reason <text>', 'why, recorded in the bundle')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Every page not touched keeps its digest, so the rest can be proven untouched against the original;
the redaction section lists each erased range and the original digest of every changed page.

Examples:
  vmpm redact crash.vmpm -o shareable.vmpm --range 0x7f000000-0x80000000 --reason "customer data"
  vmpm redact crash.vmpm -o shareable.vmpm --virt 0x7f3a1c000000-0x7f3a1c400000 --cpu 1 --reason "db process heap"
  vmpm redact crash.vmpm -o shareable.vmpm --pattern "password=[^&\\\\s]*" --pattern "BEGIN [A-Z ]*PRIVATE KEY"`,
    )
    .action(async (file: string, o: RedactCommandOptions) => {
      const options: RedactOptions = {
        ranges: o.range.map((r) => parseSpan(r, '--range')),
        virt: o.virt.map((v) => ({ ...parseSpan(v, '--virt'), ...(o.cpu === undefined ? {} : { cpu: parseSmallInt(o.cpu, '--cpu', 0) }) })),
        patterns: o.pattern,
        force: o.force === true,
      };
      if (o.cpu !== undefined && o.virt.length === 0) throw new UsageError('--cpu only applies to --virt');
      if (o.reason !== undefined) options.reason = o.reason;
      checkOutputPath(o.output, o.force === true);
      const signals = abortOnSignals();
      try {
        const r = await redactBundle(file, o.output, { ...options, signal: signals.signal });
        if (o.json) printJson(r);
        else {
          for (const w of r.warnings) process.stderr.write(`vmpm: warning: ${w}\n`);
          const bytes = r.record.erased.reduce((a, e) => a + BigInt(e.bytes), 0n);
          process.stdout.write(
            `redacted ${r.output} (${r.outputBytes} bytes): ${bytes} byte(s) erased in ${r.record.erased.length} range(s), ${r.record.pages.length} page(s) changed (original digests recorded); every other page unchanged\n`,
          );
          for (const e of r.record.erased.slice(0, 20)) process.stdout.write(`  erased ${e.start}-${e.end} (${BigInt(e.bytes)} bytes)\n`);
          if (r.record.erased.length > 20) process.stdout.write(`  ... ${r.record.erased.length - 20} more (vmpm info --json ${r.output})\n`);
        }
      } finally {
        signals.dispose();
      }
    });
}
