import type { BundleReport, DiffReport } from './model';
import type { InfoModel } from '../info';
import type { RegsCpu } from '../regs';
import { code, strong, type Block, type Inline, type ReportDoc } from './doc';
import { humanBytes, plural } from './format';
import { guestKernelBlocks } from './guest-kernel';

/** Registers worth reading first after a crash, in this order; the rest stay in the raw dump. */
const KEY_REGISTERS = [
  'rip', 'pc', 'rflags', 'pstate', 'rsp', 'sp', 'rbp',
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'cs.selector', 'ss.selector', 'cr0', 'cr2', 'cr3', 'cr4', 'efer',
  ...Array.from({ length: 31 }, (_, i) => `x${i}`),
];
const MAX_EVENTS = 50;
const MAX_RANGES = 40;

function stateText(info: InfoModel): string {
  const s = info.runState.after ?? info.runState.before;
  if (!s) return 'run state not recorded';
  return s.reason ? `${s.status} (${s.reason})` : s.status;
}

function identityLine(info: InfoModel): Inline[] {
  const parts: Inline[] = ['VM ', code(info.vm.name ?? '(unnamed)')];
  if (info.vm.uuid) parts.push(' (', code(info.vm.uuid), ')');
  parts.push(`, ${info.vm.arch ?? 'unknown arch'}, ${plural(info.vm.cpuCount ?? info.cpus.length, 'vCPU')}`);
  if (info.vm.ramSize) parts.push(`, ${humanBytes(info.vm.ramSize)} RAM`);
  parts.push(`, QEMU ${info.qemu?.version ?? 'version not recorded'}.`);
  return parts;
}

function bundleTable(info: InfoModel, label = 'Bundle'): Block {
  return {
    type: 'table',
    head: ['', ''],
    rows: [
      [label, code(info.file)],
      ['Size', `${humanBytes(info.fileSize)} (${info.fileSize} bytes)`],
      ['SHA-256', code(info.sha256 ?? 'not computed')],
      ['Integrity', info.integrity.status === 'failed' ? strong(`FAILED: ${info.integrity.problems.join('; ')}`) : info.integrity.status],
      ['Captured', `${info.capture.createdAt ?? 'time not recorded'}${info.capture.origin ? ` (${info.capture.origin})` : ''}`],
      ['Run state', stateText(info)],
    ],
  };
}

function cpuBlocks(cpus: RegsCpu[]): Block[] {
  if (cpus.length === 0) return [{ type: 'para', parts: ['No vCPU registers were recorded in this bundle.'] }];
  const blocks: Block[] = [];
  for (const c of cpus) {
    const mode = [c.mode + (c.arch === 'aarch64' ? '' : ' mode'), c.exceptionLevel !== undefined ? `EL${c.exceptionLevel}` : '', c.halted ? 'halted' : '']
      .filter(Boolean)
      .join(', ');
    blocks.push({ type: 'heading', level: 3, text: `vCPU ${c.index} (${c.arch}, ${mode})` });
    const ip = c.registers.rip ?? c.registers.pc;
    if (ip) blocks.push({ type: 'para', parts: ['Instruction pointer: ', code(`${c.registers.rip ? 'rip' : 'pc'} = ${ip}`)] });
    // Three register/value pairs per row keeps the table a screen high in both formats.
    const names = KEY_REGISTERS.filter((n) => n in c.registers);
    const rows: Inline[][] = [];
    for (let i = 0; i < names.length; i += 3) rows.push(names.slice(i, i + 3).flatMap((n) => [n, code(c.registers[n]!)] as Inline[]));
    for (const row of rows) while (row.length < 6) row.push('');
    if (rows.length > 0) blocks.push({ type: 'table', head: ['Register', 'Value', 'Register', 'Value', 'Register', 'Value'], rows, className: 'regs' });
    if (c.flags.length > 0) blocks.push({ type: 'list', items: c.flags.map((f) => [code(f.register), ` ${f.value}: ${f.text || f.set.join(' ') || '(none set)'}`]) });
  }
  return blocks;
}

export function bundleDoc(r: BundleReport): ReportDoc {
  const info = r.info;
  // A slim or redacted bundle says so on the report's first line.
  const title = `vmpm report${info.custody.tag ? ` of a ${info.custody.tag} bundle` : ''}: ${info.vm.name ?? 'unnamed VM'}, ${stateText(info)}`;
  const sev = r.errors.bySeverity;
  const sevText = (['critical', 'error', 'warning', 'info'] as const).filter((k) => sev[k] > 0).map((k) => `${sev[k]} ${k}`).join(', ');
  const blocks: Block[] = [
    { type: 'heading', level: 1, text: title },
    ...(info.custody.headline ? [{ type: 'para', parts: [strong(info.custody.headline)] } as Block] : []),
    { type: 'heading', level: 2, text: 'Summary', id: 'summary' },
    {
      type: 'para',
      parts: [
        ...identityLine(info),
        ' At capture it was ',
        strong(stateText(info)),
        `; ${plural(r.errors.records.length, 'error record')}${sevText ? ` (${sevText})` : ''}, ${plural(r.events.events.length, 'event')} in the journal. `,
        `${humanBytes(info.memory.capturedBytes)} of guest memory captured: ${info.memory.dataPages} data pages, ${info.memory.zeroPages} zero pages, ${info.memory.uniquePages} unique.`,
        ...(r.guestKernel.available && r.guestKernel.panic ? [' The guest kernel says: ', strong(r.guestKernel.panic.line), ` (Linux ${r.guestKernel.release ?? ''}).`] : []),
      ],
    },
    bundleTable(info),
    { type: 'heading', level: 2, text: 'Error timeline', id: 'errors' },
    r.errors.records.length === 0
      ? { type: 'para', parts: [r.errors.recorded ? 'No error records.' : 'Error records were not recorded in this bundle.'] }
      : {
          type: 'table',
          head: ['Time', 'Severity', 'Kind', 'Summary'],
          rows: r.errors.records.map((e) => [e.time, e.severity === 'critical' ? strong(e.severity) : e.severity, e.kind, e.summary]),
          className: 'errors',
        },
    ...guestKernelBlocks(r.guestKernel, r.guestStacks),
    { type: 'heading', level: 2, text: 'CPU state at stop', id: 'cpus' },
    ...cpuBlocks(r.cpus),
    { type: 'heading', level: 2, text: 'Memory map', id: 'memmap' },
    { type: 'figure', figure: 'address-space', alt: 'Guest-physical address space (see the HTML report for the picture).' },
    r.memmap.regions.length === 0
      ? { type: 'para', parts: ['The memory map was not recorded in this bundle.'] }
      : {
          type: 'table',
          head: ['Region', 'Kind', 'Start', 'End (excl.)', 'Size', 'Captured'],
          align: ['left', 'left', 'right', 'right', 'right', 'left'],
          rows: r.memmap.regions.map((g) => [g.name, g.kind, code(g.start), code(g.end), humanBytes(g.size), g.captured ? 'yes' : g.capturedBytes === '0x0' ? 'no' : `partly (${humanBytes(g.capturedBytes)})`]),
        },
    {
      type: 'table',
      head: ['Captured range', 'Start', 'End (excl.)', 'Pages', 'Zero pages'],
      align: ['left', 'right', 'right', 'right', 'right'],
      rows: r.memmap.captured.map((c) => [c.name ?? '', code(c.start), code(c.end), String(c.pages), String(c.zeroPages)]),
    },
  ];
  blocks.push({ type: 'heading', level: 2, text: 'Event journal', id: 'events' });
  if (r.events.events.length === 0) blocks.push({ type: 'para', parts: [r.events.recorded ? 'No events.' : 'The event journal was not recorded in this bundle.'] });
  else {
    const shown = r.events.events.slice(-MAX_EVENTS);
    if (shown.length < r.events.events.length) blocks.push({ type: 'para', parts: [`Last ${MAX_EVENTS} of ${r.events.events.length} events.`] });
    blocks.push({ type: 'table', head: ['Time', 'Event', 'Data'], rows: shown.map((e) => [e.time, e.event, e.data === undefined ? '' : code(JSON.stringify(e.data))]) });
  }
  blocks.push({ type: 'heading', level: 2, text: 'Provenance', id: 'provenance' });
  blocks.push({
    type: 'list',
    items: [
      ['QEMU: ', info.qemu ? `${info.qemu.version} ${info.qemu.package}`.trim() : 'not recorded'],
      ['Captured by: vmpm ', info.capture.vmpmVersion ?? 'unknown', info.capture.host ? ` on ${info.capture.host}` : ''],
      ['Capture policy: ', `quiesce ${info.capture.quiesce ?? 'unknown'}, memory via ${info.capture.memoryMethod ?? 'unknown'}`, info.capture.consistent === false ? ' (NOT consistent: taken from a running guest)' : ''],
      ...(info.capture.trigger ? [['Triggered by: ', info.capture.trigger] as Inline[]] : []),
      ...(info.capture.totalMs !== null ? [[`Capture took ${info.capture.totalMs} ms`] as Inline[]] : []),
      ...info.capture.warnings.map((w) => ['Warning: ', w] as Inline[]),
      ['Bundle format ', `${info.format.major}.${info.format.minor}`, ', SHA-256 ', code(info.sha256 ?? 'not computed')],
      ['Report generated by ', r.generatedBy, ' at ', r.generatedAt],
    ],
  });
  blocks.push({ type: 'para', parts: ['Check the attached bundle with ', code(`sha256sum ${baseName(info.file)}`), ' (expected ', code(info.sha256 ?? '?'), ').'] });
  for (const raw of r.rawRegisters) if (raw.text) blocks.push({ type: 'code', text: raw.text.replace(/\r/g, ''), summary: `QEMU info registers, vCPU ${raw.index} (verbatim)` });
  return { title, blocks };
}

function baseName(p: string): string {
  return p.split('/').pop() ?? p;
}

/** The diff report's memory part: the heat strip, changes by region, and the first MAX_RANGES changed ranges. */
function memoryDiffBlocks(memory: DiffReport['diff']['memory']): Block[] {
  const out: Block[] = [];
  out.push({ type: 'heading', level: 2, text: 'Memory', id: 'memory' });
  out.push({ type: 'figure', figure: 'heat-strip', alt: 'Changed pages across the address space (see the HTML report for the picture).' });
  out.push({
    type: 'table',
    head: ['Region', 'Changed pages', 'Added pages', 'Removed pages'],
    align: ['left', 'right', 'right', 'right'],
    rows: memory.byRegion.map((x) => [x.region ?? '(outside the map)', String(x.changedPages), String(x.addedPages), String(x.removedPages)]),
  });
  const ranges = [
    ...memory.changed.map((x) => ['changed', x] as const),
    ...memory.added.map((x) => ['added', x] as const),
    ...memory.removed.map((x) => ['removed', x] as const),
  ];
  if (ranges.length > 0) {
    if (ranges.length > MAX_RANGES) out.push({ type: 'para', parts: [`First ${MAX_RANGES} of ${ranges.length} ranges (all of them are in the JSON report).`] });
    out.push({
      type: 'table',
      head: ['Change', 'Start', 'End (excl.)', 'Pages', 'Region'],
      align: ['left', 'right', 'right', 'right', 'left'],
      rows: ranges.slice(0, MAX_RANGES).map(([k, x]) => [k, code(x.start), code(x.end), String(x.pages), x.region ?? '-']),
    });
  }
  return out;
}

export function diffDoc(r: DiffReport): ReportDoc {
  const d = r.diff;
  const title = `vmpm diff report: ${baseName(r.a.file)} -> ${baseName(r.b.file)}`;
  const regCount = d.cpus.reduce((s, c) => s + Object.keys(c.registers).length, 0);
  const m = d.memory.counts;
  const blocks: Block[] = [
    { type: 'heading', level: 1, text: title },
    { type: 'heading', level: 2, text: 'Summary', id: 'summary' },
    {
      type: 'para',
      parts: [
        d.identity.sameVm === true ? 'Same VM in both bundles. ' : d.identity.sameVm === false ? strong('Different VMs. ') : 'VM identity not recorded. ',
        `Run state A: ${stateText(r.a)}; B: ${stateText(r.b)}. `,
        `${plural(regCount, 'register')} changed on ${plural(d.cpus.length, 'vCPU')}. Memory: `,
        strong(`${plural(m.changedPages, 'page')} changed`),
        ` in ${plural(d.memory.changed.length, 'range')}, ${m.addedPages} added, ${m.removedPages} removed, ${m.unchangedPages} unchanged. `,
        `${plural(d.errors.new.length, 'new error record')}, ${plural(d.events.new.length, 'new event')}.`,
      ],
    },
    bundleTable(r.a, 'A'),
    bundleTable(r.b, 'B'),
    { type: 'heading', level: 2, text: 'Identity and run state', id: 'identity' },
    d.identity.changes.length === 0
      ? { type: 'para', parts: ['No differences.'] }
      : { type: 'table', head: ['Field', 'A', 'B'], rows: d.identity.changes.map((c) => [c.field, c.a ?? '-', c.b ?? '-']) },
    { type: 'heading', level: 2, text: 'Registers', id: 'registers' },
  ];
  if (d.cpus.length === 0) blocks.push({ type: 'para', parts: ['No register changes.'] });
  for (const c of d.cpus) {
    blocks.push({ type: 'heading', level: 3, text: `vCPU ${c.index}${c.onlyIn ? ` (only in ${c.onlyIn.toUpperCase()})` : ''}${c.mode ? ` mode ${c.mode.a} -> ${c.mode.b}` : ''}` });
    blocks.push({ type: 'table', head: ['Register', 'A', 'B'], className: 'regdiff', rows: Object.entries(c.registers).map(([n, v]) => [n, code(v.a ?? '-'), code(v.b ?? '-')]) });
  }
  blocks.push(...memoryDiffBlocks(d.memory));
  const mm = d.memmap;
  blocks.push({ type: 'heading', level: 2, text: 'Memory map changes', id: 'memmap' });
  if (mm.added.length + mm.removed.length + mm.changed.length === 0) blocks.push({ type: 'para', parts: ['No differences.'] });
  else
    blocks.push({
      type: 'table',
      head: ['Change', 'Region', 'A', 'B'],
      rows: [
        ...mm.added.map((g) => ['added', g.name, '-', `${g.kind} ${g.start}-${g.end}`]),
        ...mm.removed.map((g) => ['removed', g.name, `${g.kind} ${g.start}-${g.end}`, '-']),
        ...mm.changed.map((g) => ['changed', g.name, `${g.a.kind} ${g.a.start}-${g.a.end}`, `${g.b.kind} ${g.b.start}-${g.b.end}`]),
      ],
    });
  blocks.push({ type: 'heading', level: 2, text: 'New error records', id: 'errors' });
  blocks.push(
    d.errors.new.length === 0
      ? { type: 'para', parts: ['None.'] }
      : { type: 'table', head: ['Time', 'Severity', 'Kind', 'Summary'], className: 'errors', rows: d.errors.new.map((e) => [e.time, e.severity, e.kind, e.summary]) },
  );
  blocks.push({ type: 'heading', level: 2, text: 'New events', id: 'events' });
  blocks.push(
    d.events.new.length === 0
      ? { type: 'para', parts: ['None.'] }
      : { type: 'table', head: ['Time', 'Event', 'Data'], rows: d.events.new.slice(0, MAX_EVENTS).map((e) => [e.time, e.event, e.data === undefined ? '' : code(JSON.stringify(e.data))]) },
  );
  blocks.push({ type: 'para', parts: ['Report generated by ', r.generatedBy, ' at ', r.generatedAt, '.'] });
  return { title, blocks };
}
