import type { Command } from 'commander';
import { withBundle, loadSections, searchBundle, type SearchModel, type SearchPattern } from '../../analysis';
import { UsageError } from '../../util/errors';
import { parseSmallInt } from '../output/args';
import { printJson } from '../output/json';
import { renderTable } from '../output/table';
import { palette } from '../output/color';

interface SearchOptions {
  text?: string;
  hex?: string;
  regex?: string;
  limit: string;
  json?: boolean;
}

/** `vmpm search FILE (--text|--hex|--regex)`: physical addresses of matches, with context. */
export function register(program: Command): void {
  program
    .command('search')
    .description('find bytes in captured guest memory (matches may cross page and frame boundaries, never holes)')
    .argument('<file>', 'bundle (.vmpm)')
    .option('--text <string>', 'UTF-8 text to find')
    .option('--hex <bytes>', 'bytes to find, e.g. "de ad be ef"')
    .option('--regex <re>', 'JavaScript regular expression over bytes as latin1 (\\xNN = byte NN); matches up to 4096 bytes')
    .option('--limit <n>', 'stop after this many matches', '100')
    .option('--json', 'print matches as JSON')
    .addHelpText('after', '\nExamples:\n  vmpm search crash.vmpm --text FORENSIC-MARKER\n  vmpm search crash.vmpm --hex "55 aa" --limit 5\n  vmpm search crash.vmpm --regex "Kernel panic[^\\n]*"')
    .action(async (file: string, o: SearchOptions) => {
      const given = [o.text !== undefined, o.hex !== undefined, o.regex !== undefined].filter(Boolean).length;
      if (given !== 1) throw new UsageError('search needs exactly one of --text, --hex or --regex');
      const pattern: SearchPattern = o.text !== undefined ? { kind: 'text', text: o.text } : o.hex !== undefined ? { kind: 'hex', hex: o.hex } : { kind: 'regex', source: o.regex! };
      const limit = parseSmallInt(o.limit, '--limit', 1);
      const model = await withBundle(file, async (b) => searchBundle(b, pattern, { limit, memmap: (await loadSections(b)).memmap }));
      if (o.json) printJson(model);
      else process.stdout.write(formatSearch(model));
    });
}

export function formatSearch(m: SearchModel): string {
  if (m.matches.length === 0) return 'no matches\n';
  const p = palette();
  // The matched bytes inside the context, emphasised when colour is on.
  const context = (x: SearchModel['matches'][number]): string => {
    const at = Number(BigInt(x.address) - BigInt(x.context.start));
    const a = x.context.ascii;
    return `${a.slice(0, at)}${p.bold(p.yellow(a.slice(at, at + x.length)))}${a.slice(at + x.length)}`;
  };
  const table = renderTable(
    ['Address', 'Length', 'Region', 'Context'],
    m.matches.map((x) => [x.address, String(x.length), x.region ?? '-', context(x)]),
    { align: ['right', 'right', 'left', 'left'] },
  );
  const tail = m.truncated ? `\nstopped after ${m.limit} matches (--limit); there are more` : `\n${m.matches.length} match(es)`;
  return `${table}${tail}\n`;
}
