import { isRecord } from '../util/guards';
import { ioDeadline, type IoDeadline } from '../util/io-deadline';
import { timerMs } from '../util/time';
import { QmpDisconnectedError, QmpTimeoutError } from './errors';
import type { JsonObject } from './messages';
import type { QmpEvent } from './types';

export type EventListener = (e: QmpEvent) => void;

/**
 * Events since connect, bounded (oldest dropped, count kept), plus live subscribers. The client
 * pushes every event the moment it is read, whether or not anybody listens, so QEMU's output never
 * backs up and late subscribers can still replay what happened during negotiation.
 */
export class EventHub {
  private buffer: QmpEvent[] = [];
  private dropped = 0;
  private readonly listeners = new Set<EventListener>();

  constructor(private readonly maxBuffered = 10_000) {}

  push(e: QmpEvent): void {
    this.buffer.push(e);
    if (this.buffer.length > this.maxBuffered) {
      const excess = this.buffer.length - this.maxBuffered;
      this.buffer.splice(0, excess);
      this.dropped += excess;
    }
    for (const listener of [...this.listeners]) deliver(listener, e);
  }

  subscribe(listener: EventListener, replay: boolean): () => void {
    if (replay) for (const e of [...this.buffer]) deliver(listener, e);
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  buffered(): QmpEvent[] {
    return [...this.buffer];
  }

  droppedCount(): number {
    return this.dropped;
  }

  /**
   * Resolves with the first event `test` accepts (buffered ones first when `includeBuffered`); rejects
   * when the session closes first (`onClose` subscribes to that) or after `timeoutMs` (0/Infinity: never).
   */
  waitFor(
    test: (e: QmpEvent) => boolean,
    wait: { name: string; endpoint: string; timeoutMs: number; includeBuffered: boolean; onClose: (listener: (err?: Error) => void) => () => void },
  ): Promise<QmpEvent> {
    const { name, timeoutMs } = wait;
    return new Promise((resolve, reject) => {
      let done = false;
      let deadline: IoDeadline | undefined;
      let unsubscribeClose: () => void = () => undefined;
      let unsubscribe: () => void = () => undefined;
      const finish = (fn: () => void): void => {
        if (done) return;
        done = true;
        deadline?.cancel();
        unsubscribe();
        unsubscribeClose();
        fn();
      };
      unsubscribe = this.subscribe((e) => {
        if (test(e)) finish(() => resolve(e));
      }, wait.includeBuffered);
      if (done) {
        unsubscribe();
        return;
      }
      unsubscribeClose = wait.onClose((err) =>
        finish(() => reject(new QmpDisconnectedError(`connection to ${wait.endpoint} closed while waiting for ${name}`, { cause: err }))),
      );
      if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
        // An event that reached the kernel while vmpm's loop was stalled still counts (io-deadline.ts).
        deadline = ioDeadline(timeoutMs, () => finish(() => reject(new QmpTimeoutError(`wait for ${name}`, timerMs(timeoutMs)))));
      }
    });
  }
}

/** An {"event": ...} message as vmpm keeps it; a missing or malformed timestamp reads as QEMU's own {-1, -1}. */
export function eventFromMessage(msg: JsonObject, receivedAt: Date): QmpEvent {
  const ts = msg.timestamp;
  const seconds = isRecord(ts) && typeof ts.seconds === 'number' ? ts.seconds : -1;
  const microseconds = isRecord(ts) && typeof ts.microseconds === 'number' ? ts.microseconds : -1;
  const e: QmpEvent = { event: msg.event as string, timestamp: { seconds, microseconds }, receivedAt };
  if (isRecord(msg.data)) e.data = { ...msg.data };
  return e;
}

/** A throwing listener must not break the reader loop or starve other listeners. */
function deliver(listener: EventListener, e: QmpEvent): void {
  try {
    listener(e);
  } catch {
    // deliberately ignored: listener bugs are the listener's business, the protocol goes on
  }
}
