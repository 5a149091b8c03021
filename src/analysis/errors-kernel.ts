/**
 * The guest kernel's own fault reports beside QEMU's error records. A machine check shows on the QMP
 * side only as MEMORY_FAILURE (action inject), graded warning there; the kernel's record carries the
 * bank status, graded by its decode (PCC, or UC with AR: critical), and says which QMP event it follows
 * (the n-th machine check of the log follows the n-th MEMORY_FAILURE delivered to the guest).
 * Kernel times are seconds since boot; a record is placed on the bundle's timeline at the event it
 * follows, else at the kernel's CRASHTIME less its distance to the panic, else at the end.
 */
import type { Severity } from '../bundle/schema';
import type { GuestKernelFacts, KernelFaultModel } from './guest-kernel';
import type { ErrorsModel } from './timeline';

type Row = ErrorsModel['records'][number];

export function withKernelFaults(model: ErrorsModel, facts: GuestKernelFacts): ErrorsModel {
  if (!facts.available || facts.faults.length === 0) return model;
  const failures = model.records.filter((r) => r.kind === 'memory-failure' && r.source === 'event' && recipientIsGuest(r.raw));
  const panicSecs = facts.panic ? Number(facts.panic.time) : undefined;
  const crashMs = facts.crashTime ? Date.parse(facts.crashTime) : undefined;
  const lastTime = model.records.length > 0 ? model.records[model.records.length - 1]!.time : '';
  let mceIndex = 0;
  const rows: Row[] = facts.faults.map((f) => {
    let follows: Row | undefined;
    if (f.kind === 'machine-check' && failures.length > 0) follows = failures[Math.min(mceIndex++, failures.length - 1)];
    const estimated = crashMs !== undefined && panicSecs !== undefined ? new Date(crashMs - (panicSecs - Number(f.time)) * 1000).toISOString() : undefined;
    return {
      time: follows?.time ?? estimated ?? lastTime,
      source: 'guest-kernel',
      kind: f.kind,
      severity: f.severity as Severity,
      summary: `[${f.time}] ${f.summary}${follows ? ` (follows ${follows.summary})` : ''}`,
      ...(f.device ? { device: f.device } : {}),
      raw: f.lines,
      kernel: f,
      ...(follows ? { follows: `${follows.time} ${follows.summary}` } : {}),
    };
  });
  // Stable merge: a kernel record sorts after the QEMU record at the same time (it follows it).
  const records = [...model.records, ...rows].map((r, i) => ({ r, i })).sort((a, b) => (a.r.time < b.r.time ? -1 : a.r.time > b.r.time ? 1 : a.i - b.i)).map((x) => x.r);
  const bySeverity = { ...model.bySeverity };
  for (const r of rows) bySeverity[r.severity]++;
  return { ...model, records, bySeverity };
}

function recipientIsGuest(raw: unknown): boolean {
  const data = (raw as { data?: { recipient?: unknown } } | null)?.data;
  return data?.recipient === undefined || data.recipient === 'guest';
}

export type { KernelFaultModel };
