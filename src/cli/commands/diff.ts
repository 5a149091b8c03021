import type { Command } from 'commander';
import { withBundles, buildDiff, diffKernelLogs, formatKlogLines, loadGuestKernel, type DiffModel, type KernelLogDiff } from '../../analysis';
import { fromHex } from '../../util/hex';
import { printJson } from '../output/json';
import { renderTable } from '../output/table';
import { palette } from '../output/color';
import { hexdumpDiffRow } from '../output/hexdump';

/** `vmpm diff A B`: what changed between two captures, memory from page digests alone. */
export function register(program: Command): void {
  program
    .command('diff')
    .description('compare two bundles: identity, run state, registers, memory map, memory pages, errors, events')
    .argument('<a>', 'baseline bundle (older)')
    .argument('<b>', 'bundle to compare (newer)')
    .option('--show-bytes', 'also hexdump the differing bytes of the first few changed pages')
    .option('--json', 'print the diff as JSON')
    .action(async (a: string, b: string, o: { showBytes?: boolean; json?: boolean }) => {
      const [model, kernelLog] = await withBundles(a, b, async (ba, bb) => {
        const diff = await buildDiff(ba, bb, { showBytes: o.showBytes === true });
        // New guest kernel log records between two captures of the same boot.
        return [diff, diffKernelLogs(await loadGuestKernel(ba, { lastMessages: 0 }), await loadGuestKernel(bb, { lastMessages: 0 }))] as const;
      });
      if (o.json) printJson({ ...model, kernelLog });
      else process.stdout.write(`${formatDiff(model)}${formatKernelLogDiff(kernelLog)}`);
    });
}

export function formatKernelLogDiff(k: KernelLogDiff): string {
  const p = palette();
  const head = `\n${p.cyan('Guest kernel log:')}\n`;
  if (!k.compared) return `${head}  not compared (${k.reason})\n`;
  if (!k.sameBoot) return `${head}  not the same boot: ${k.basis}\n`;
  const lost = k.lostFromB > 0 ? `; ${k.lostFromB} of A's records were overwritten in B` : '';
  if (k.newRecords.length === 0) return `${head}  no new records (${k.basis}${lost})\n`;
  return `${head}  ${k.newRecords.length} new record(s) in B (${k.basis}${lost}):\n${formatKlogLines(k.newRecords).replace(/^/gm, '  ')}`;
}

export function formatDiff(d: DiffModel): string {
  const p = palette();
  const out: string[] = [];
  out.push(p.bold(`A: ${d.a.file}  (${d.a.name ?? 'unnamed'}, ${d.a.status ?? 'state unknown'}, ${d.a.createdAt ?? 'time unknown'})`));
  out.push(p.bold(`B: ${d.b.file}  (${d.b.name ?? 'unnamed'}, ${d.b.status ?? 'state unknown'}, ${d.b.createdAt ?? 'time unknown'})`));
  if (d.identity.sameVm === false) out.push(p.yellow('note: the bundles come from different VMs'));
  for (const [k, side] of [['A', d.a], ['B', d.b]] as const) {
    if (side.slim) out.push(p.yellow(`note: ${k} is slim: it has no memory contents, only page digests (pages compare by digest; no bytes to show)`));
    if (side.redacted) out.push(p.yellow(`note: ${k} is redacted: erased bytes read as zeros, so those pages differ from the original's (vmpm info --json ${side.file} lists them)`));
  }
  out.push('', p.cyan('Identity and run state:'));
  out.push(d.identity.changes.length === 0 ? '  no differences' : renderTable(['Field', 'A', 'B'], d.identity.changes.map((c) => [c.field, c.a ?? '-', c.b ?? '-'])));
  out.push('', p.cyan('Registers:'));
  if (d.cpus.length === 0) out.push('  no differences');
  for (const c of d.cpus) {
    out.push(`  vCPU ${c.index}${c.onlyIn ? ` (only in ${c.onlyIn.toUpperCase()})` : ''}${c.mode ? `, mode ${c.mode.a} -> ${c.mode.b}` : ''}`);
    const rows = Object.entries(c.registers).map(([n, v]) => [n, v.a ?? '-', v.b ?? '-']);
    if (rows.length > 0) out.push(renderTable(['Register', 'A', 'B'], rows, { align: ['left', 'right', 'right'] }));
  }
  const mm = d.memmap;
  out.push('', p.cyan('Memory map:'));
  if (mm.added.length + mm.removed.length + mm.changed.length === 0) out.push('  no differences');
  for (const g of mm.added) out.push(`  + ${g.name} ${g.kind} ${g.start}-${g.end}`);
  for (const g of mm.removed) out.push(`  - ${g.name} ${g.kind} ${g.start}-${g.end}`);
  for (const g of mm.changed) out.push(`  ~ ${g.name} ${g.a.kind} ${g.a.start}-${g.a.end} -> ${g.b.kind} ${g.b.start}-${g.b.end}`);
  const m = d.memory;
  out.push('', p.cyan('Memory (from page digests):'));
  out.push(`  ${m.counts.changedPages} changed, ${m.counts.addedPages} added, ${m.counts.removedPages} removed, ${m.counts.unchangedPages} unchanged pages`);
  const rows = [
    ...m.changed.map((r) => ['changed', r.start, r.end, String(r.pages), r.region ?? '-']),
    ...m.added.map((r) => ['added', r.start, r.end, String(r.pages), r.region ?? '-']),
    ...m.removed.map((r) => ['removed', r.start, r.end, String(r.pages), r.region ?? '-']),
  ];
  if (rows.length > 0) {
    const shown = rows.slice(0, 50);
    out.push(renderTable(['Change', 'Start', 'End (excl.)', 'Pages', 'Region'], shown, { align: ['left', 'right', 'right', 'right', 'left'] }));
    if (rows.length > shown.length) out.push(`  ... ${rows.length - shown.length} more ranges (see --json)`);
  }
  if (d.bytes) {
    for (const page of d.bytes) {
      out.push('', `  page ${page.page}:`);
      for (const r of page.rows) out.push(hexdumpDiffRow(fromHex(r.offset), Buffer.from(r.a, 'hex'), Buffer.from(r.b, 'hex')));
      if (page.moreRows > 0) out.push(`  ... ${page.moreRows} more differing lines in this page`);
    }
  }
  out.push('', p.cyan('New error records:'));
  out.push(d.errors.new.length === 0 ? '  none' : d.errors.new.map((e) => `  ${e.time} ${e.severity} ${e.kind}: ${e.summary}`).join('\n'));
  out.push('', p.cyan('New events:'));
  out.push(d.events.new.length === 0 ? '  none' : d.events.new.map((e) => `  ${e.time} ${e.event}${e.data === undefined ? '' : ` ${JSON.stringify(e.data)}`}`).join('\n'));
  return `${out.join('\n')}\n`;
}
