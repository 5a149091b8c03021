/**
 * The report's "Guest kernel" part: why the guest died in its kernel's own words (the panic line, the
 * last messages before it, machine-check and NMI lines included), the faults it reported, and where
 * each vCPU was (symbolized instruction pointer and stack scan, from stack.ts).
 */
import type { GuestKernelSummary } from '../guest-kernel';
import type { StackModel } from '../stack';
import { code, strong, type Block, type Inline } from './doc';

const MAX_FRAMES = 12;

export function guestKernelBlocks(k: GuestKernelSummary, stacks: StackModel | undefined): Block[] {
  const blocks: Block[] = [{ type: 'heading', level: 2, text: 'Guest kernel', id: 'guest-kernel' }];
  if (!k.available) {
    blocks.push({ type: 'para', parts: [`No Linux kernel found: ${k.reason}`] });
    return blocks;
  }
  const facts: Inline[][] = [
    ['Kernel', `Linux ${k.release ?? '(release unknown)'}${k.arch ? ` (${k.arch})` : ''}${k.buildId ? `, build id ${k.buildId}` : ''}`],
    ['KASLR offset', k.kaslrOffset ?? 'not published'],
    ...(k.crashTime ? [['Crash time (kernel)', k.crashTime] as Inline[]] : []),
    ['VMCOREINFO', `from ${k.vmcoreinfo}`],
    ['Kernel log', `${k.records} records${k.skipped ? `, ${k.skipped} unreadable (skipped)` : ''} (vmpm klog)`],
  ];
  blocks.push({ type: 'para', parts: k.panic ? ['Panic reason: ', strong(k.panic.reason), ` (at ${k.panic.time} s after boot)`] : ['The kernel log holds no panic line.'] });
  blocks.push({ type: 'table', head: ['', ''], rows: facts });
  if (k.faults.length > 0) {
    blocks.push({ type: 'heading', level: 3, text: 'Faults the kernel reported' });
    blocks.push({
      type: 'table',
      head: ['Time (s)', 'Severity', 'Kind', 'Summary'],
      rows: k.faults.map((f) => [f.time, f.severity === 'critical' ? strong(f.severity) : f.severity, f.kind, f.summary]),
      className: 'errors',
    });
  }
  if (k.lastMessages.length > 0) {
    const text = k.lastMessages.map((r) => r.text.split('\n').map((l) => `[${r.time.padStart(12)}] ${l}`).join('\n')).join('\n');
    blocks.push({ type: 'heading', level: 3, text: k.panic ? 'Last kernel messages up to the panic' : 'Last kernel messages' });
    blocks.push({ type: 'code', text });
  }
  if (stacks) blocks.push(...stackBlocks(stacks));
  return blocks;
}

function stackBlocks(s: StackModel): Block[] {
  const blocks: Block[] = [{ type: 'heading', level: 3, text: 'Where each vCPU was' }];
  if (s.error) {
    blocks.push({ type: 'para', parts: [`No stack scan: ${s.error}`] });
    return blocks;
  }
  blocks.push({ type: 'para', parts: [s.note, '.'] });
  for (const c of s.cpus) {
    const ip: Inline[] = [`vCPU ${c.index}: `];
    if (c.ip) ip.push('instruction pointer ', code(c.ip));
    if (c.ipSymbol) ip.push(' ', code(`<${c.ipSymbol}>`));
    if (c.ipNote) ip.push(` (${c.ipNote})`);
    if (c.error) ip.push(` - ${c.error}`);
    blocks.push({ type: 'para', parts: ip });
    if (c.frames.length > 0) {
      const shown = c.frames.slice(0, MAX_FRAMES);
      blocks.push({ type: 'code', text: shown.map((f) => f.text).join('\n') + (c.frames.length > shown.length ? `\n... ${c.frames.length - shown.length} more (vmpm stack)` : '') });
    }
  }
  return blocks;
}
