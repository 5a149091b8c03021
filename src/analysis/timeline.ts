import type { ErrorRecord, ErrorsSection, EventsSection, JournalEvent, Severity } from '../bundle/schema';
import type { KernelFaultModel } from './guest-kernel';

/** `vmpm errors --json`: error records oldest first. */
export interface ErrorsModel {
  recorded: boolean;
  /** QEMU-side records, plus (source guest-kernel) the faults the guest kernel logged: see errors-kernel.ts. */
  records: Array<Omit<ErrorRecord, 'raw' | 'source'> & { source: ErrorRecord['source'] | 'guest-kernel'; raw: unknown; kernel?: KernelFaultModel; follows?: string }>;
  bySeverity: Record<Severity, number>;
}

/** `vmpm events --json`: the QMP event journal oldest first. */
export interface EventsModel {
  recorded: boolean;
  dropped: number;
  events: JournalEvent[];
}

const byTime = <T>(time: (x: T) => string) => (a: T, b: T): number => (time(a) < time(b) ? -1 : time(a) > time(b) ? 1 : 0);

export function buildErrors(section: ErrorsSection | null): ErrorsModel {
  const records = [...(section?.records ?? [])].sort(byTime((r: ErrorRecord) => r.time));
  const bySeverity: Record<Severity, number> = { critical: 0, error: 0, warning: 0, info: 0 };
  for (const r of records) if (r.severity in bySeverity) bySeverity[r.severity]++;
  return { recorded: section !== null, records, bySeverity };
}

export function buildEvents(section: EventsSection | null): EventsModel {
  // Sort on QEMU's own clock (microsecond resolution), stable for equal stamps.
  const events = [...(section?.events ?? [])].sort((a, b) =>
    a.timestamp.seconds - b.timestamp.seconds || a.timestamp.microseconds - b.timestamp.microseconds,
  );
  return { recorded: section !== null, dropped: section?.dropped ?? 0, events };
}

/** A short one-line description of an event's data, for tables. */
export function eventSummary(e: JournalEvent): string {
  if (e.data === undefined || e.data === null) return '';
  const text = JSON.stringify(e.data);
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
