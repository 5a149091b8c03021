import Table from 'cli-table3';
import { colorEnabled } from './color';

/**
 * A cli-table3 table rendered to a string. Borders and headers are uncoloured unless colour is on, so
 * piped output and tests see plain text.
 */
export function renderTable(head: string[], rows: string[][], options: { align?: Array<'left' | 'right'> } = {}): string {
  const color = colorEnabled();
  const table = new Table({
    head,
    style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [] },
    // cli-table3 crashes on an explicit `colAligns: undefined`, so only pass it when given.
    ...(options.align ? { colAligns: options.align } : {}),
    wordWrap: false,
    // No rule between body rows: long listings stay compact and grep-friendly.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) table.push(r);
  return table.toString();
}

/** Two-column "key  value" lines, keys padded, for info-style screens. */
export function renderKeyValues(pairs: Array<[string, string]>): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
