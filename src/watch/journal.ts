/**
 * The bounded rolling journal of one VM's events. A watcher runs for days, so the journal keeps the
 * newest events within a count and a byte budget and counts what it dropped; the count goes into
 * each bundle (EventsSection.dropped) so a reader knows the journal is not the whole history.
 */
import type { JournalEvent } from '../bundle/schema';
import { isoFromQmpTimestamp, type QmpTimestamp } from '../util/time';

export interface JournalLimits {
  /** Most events kept (default 2000). */
  maxEvents?: number;
  /** Most bytes of event JSON kept (default 4 MiB); an event's `data` over 64 KiB is truncated. */
  maxBytes?: number;
}

const MAX_DATA_BYTES = 64 * 1024;

interface Entry {
  event: JournalEvent;
  bytes: number;
}

export class RollingJournal {
  private readonly entries: Entry[] = [];
  private head = 0; // index of the oldest live entry; compacted lazily so push stays O(1) amortised
  private bytes = 0;
  private droppedCount = 0;
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  constructor(limits: JournalLimits = {}) {
    this.maxEvents = Math.max(1, limits.maxEvents ?? 2000);
    this.maxBytes = Math.max(1024, limits.maxBytes ?? 4 * 1024 * 1024);
  }

  add(e: { event: string; data?: unknown; timestamp: { seconds: number; microseconds: number }; receivedAt: Date }): JournalEvent {
    let data = e.data;
    let size = data === undefined ? 0 : jsonSize(data);
    if (size > MAX_DATA_BYTES) {
      data = { vmpmTruncated: `event data was ${size} bytes; over ${MAX_DATA_BYTES} it is not journaled` };
      size = jsonSize(data);
    }
    const entry: JournalEvent = {
      event: e.event,
      ...(data === undefined ? {} : { data }),
      timestamp: e.timestamp,
      time: qemuTime(e.timestamp, e.receivedAt),
      receivedAt: e.receivedAt.toISOString(),
    };
    const bytes = size + e.event.length + 120;
    this.entries.push({ event: entry, bytes });
    this.bytes += bytes;
    while (this.length > this.maxEvents || (this.bytes > this.maxBytes && this.length > 1)) this.dropOldest();
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    return entry;
  }

  get length(): number {
    return this.entries.length - this.head;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** A copy of the live events, oldest first. */
  snapshot(): JournalEvent[] {
    return this.entries.slice(this.head).map((x) => x.event);
  }

  private dropOldest(): void {
    const oldest = this.entries[this.head];
    if (!oldest) return;
    this.bytes -= oldest.bytes;
    this.head += 1;
    this.droppedCount += 1;
  }
}

/**
 * An event's time for journals and notifications: QEMU's own timestamp with microseconds, or, for an
 * event that carried none, when vmpm received it (the bundle schema's rule for `time`).
 */
export function qemuTime(ts: QmpTimestamp, receivedAt?: Date): string {
  return isoFromQmpTimestamp(ts) ?? (receivedAt ?? new Date()).toISOString();
}

function jsonSize(v: unknown): number {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `0x${x.toString(16)}` : x))?.length ?? 0;
  } catch {
    return MAX_DATA_BYTES + 1;
  }
}
