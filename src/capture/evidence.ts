/**
 * Events and error records for the bundle: the journal (watch's rolling journal plus every event this
 * connection received, without duplicates) and the normalised error records derived from it, from the
 * run state and from block devices (src/capture/errors.ts does the per-source normalisation).
 */
import type { ErrorRecord, JournalEvent, RunState } from '../bundle/schema';
import { runStateRule, type QmpEvent } from '../qmp';
import { isoFromQmpTimestamp } from '../util/time';
import { errorRecordFromEvent, errorRecordsFromBlock, errorRecordsFromStatus } from './errors';

export function journalEventFromQmp(e: QmpEvent): JournalEvent {
  const out: JournalEvent = {
    event: e.event,
    timestamp: e.timestamp,
    // An event without a QEMU timestamp (the client stores -1/-1) is dated when vmpm received it.
    time: isoFromQmpTimestamp(e.timestamp) ?? e.receivedAt.toISOString(),
    receivedAt: e.receivedAt.toISOString(),
  };
  if (e.data !== undefined) out.data = e.data;
  return out;
}

function eventKey(e: { event: string; timestamp: { seconds: number; microseconds: number }; data?: unknown }): string {
  return `${e.event}|${e.timestamp.seconds}|${e.timestamp.microseconds}|${JSON.stringify(e.data ?? null, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`;
}

/** The caller's journal followed by this connection's events, de-duplicated, in QEMU time order. */
export function mergeJournal(journal: JournalEvent[], received: QmpEvent[]): JournalEvent[] {
  const seen = new Set<string>();
  const out: JournalEvent[] = [];
  for (const e of [...journal, ...received.map(journalEventFromQmp)]) {
    const key = eventKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  const t = (e: JournalEvent): number => e.timestamp.seconds * 1e6 + e.timestamp.microseconds;
  return out.sort((a, b) => t(a) - t(b));
}

export function collectErrorRecords(input: {
  trigger: ErrorRecord | undefined;
  journal: JournalEvent[];
  before: RunState;
  blockDevices: unknown[];
}): ErrorRecord[] {
  const records: ErrorRecord[] = [];
  const seen = new Set<string>();
  const add = (r: ErrorRecord | undefined): void => {
    if (!r) return;
    // An event happens at a time; a run state or io-status is a condition that holds. The same
    // condition observed twice (by watch when it found the VM, then by capture) is one record: the first.
    const key = r.source === 'event' ? `${r.source}|${r.kind}|${r.time}|${r.device ?? ''}` : `${r.source}|${r.kind}|${r.device ?? ''}`;
    if (seen.has(key)) return;
    seen.add(key);
    records.push(r);
  };
  add(input.trigger);
  for (const e of input.journal) add(errorRecordFromEvent(e));
  for (const r of errorRecordsFromStatus(input.before, input.before.at)) add(r);
  for (const r of errorRecordsFromBlock(input.blockDevices, input.before.at)) add(r);
  return records;
}

/** Why the guest is in a non-running, non-paused state, from the newest matching error record. */
export function runStateReason(state: RunState, records: ErrorRecord[]): string | undefined {
  if (state.running || state.status === 'paused' || state.status === 'prelaunch') return undefined;
  const kinds = runStateRule(state.status)?.explainedBy ?? [];
  const fromEvent = [...records].reverse().find((r) => r.source === 'event' && kinds.includes(r.kind));
  return fromEvent?.summary ?? state.status;
}
