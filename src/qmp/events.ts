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
}

/** A throwing listener must not break the reader loop or starve other listeners. */
function deliver(listener: EventListener, e: QmpEvent): void {
  try {
    listener(e);
  } catch {
    // deliberately ignored: listener bugs are the listener's business, the protocol goes on
  }
}
