import { describeError } from '../util/errors';
import { ioDeadline, type IoDeadline } from '../util/io-deadline';
import { timerMs } from '../util/time';
import { clipLine, QmpConnectError, QmpDisconnectedError, QmpError, QmpGreetingError, QmpNegotiationError } from './errors';
import type { JsonObject } from './messages';

export type OpenPhase = 'connect' | 'greeting' | 'negotiation' | 'version';

/** A greeting as read: the raw line (for error context) and the parsed object. */
export interface GreetingLine {
  line: string;
  msg: JsonObject;
}

/** The greeting while it is awaited: read early (before open() asked), or asked for and not read yet. */
interface PendingGreeting {
  early?: GreetingLine;
  waiter?: { resolve: (g: GreetingLine) => void; reject: (e: Error) => void };
}

/**
 * The session's life, one state instead of flags: opening (with the phase a timeout names, and the
 * greeting while it is awaited), open, or closed (by us or not, and why).
 */
type Life =
  | { state: 'opening'; phase: OpenPhase; greeting: PendingGreeting | undefined }
  | { state: 'open' }
  | { state: 'closed'; byUs: boolean; reason: Error | undefined };

/**
 * The session's state machine (qemu.qmp's `Runstate` in protocol.py): opening → open → closed, with
 * closed reachable from every state exactly once. It owns what depends only on the state: which open
 * phase a timeout names, the greeting handshake while opening, and the close listeners.
 */
export class SessionLife {
  private life: Life;
  private readonly closeListeners = new Set<(err?: Error) => void>();

  constructor(
    private readonly endpoint: string,
    expectsGreeting: boolean,
  ) {
    this.life = { state: 'opening', phase: 'connect', greeting: expectsGreeting ? {} : undefined };
  }

  get closed(): boolean {
    return this.life.state === 'closed';
  }

  /** Why the session closed (undefined while it is not closed, or when it closed orderly). */
  get closeReason(): Error | undefined {
    return this.life.state === 'closed' ? this.life.reason : undefined;
  }

  /** opening → open (no-op when it closed meanwhile). */
  opened(): void {
    if (this.life.state === 'opening') this.life = { state: 'open' };
  }

  /**
   * Runs the open steps under one deadline. Each `step(phase, fn)` records the phase it is in, so
   * a timeout says what was awaited (connect, greeting, negotiation, version).
   */
  async within(requestedMs: number, run: (step: <T>(phase: OpenPhase, fn: () => Promise<T>) => Promise<T>) => Promise<void>): Promise<void> {
    const timeoutMs = timerMs(requestedMs);
    let deadline: IoDeadline | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      // A greeting or reply that reached the kernel while vmpm's loop was stalled still counts (io-deadline.ts).
      deadline = ioDeadline(timeoutMs, () => reject(this.timeoutError(this.life.state === 'opening' ? this.life.phase : 'connect', timeoutMs)));
    });
    const step = <T>(phase: OpenPhase, fn: () => Promise<T>): Promise<T> => {
      if (this.life.state === 'opening') this.life.phase = phase;
      const running = fn();
      running.catch(() => undefined); // the loser of the race must not become an unhandled rejection
      return Promise.race([running, timedOut]);
    };
    try {
      await run(step);
    } finally {
      deadline?.cancel();
    }
  }

  private timeoutError(phase: OpenPhase, timeoutMs: number): QmpError {
    if (phase === 'connect') return new QmpConnectError(`could not connect to ${this.endpoint} within ${timeoutMs} ms`, { code: 'ETIMEDOUT' });
    if (phase === 'greeting') {
      return new QmpGreetingError(
        `no QMP greeting from ${this.endpoint} within ${timeoutMs} ms (is another client connected? QEMU serves one client per monitor socket)`,
        { timedOut: true },
      );
    }
    if (phase === 'version') return new QmpNegotiationError(`query-version on ${this.endpoint} got no reply within ${timeoutMs} ms`);
    return new QmpNegotiationError(`qmp_capabilities on ${this.endpoint} got no reply within ${timeoutMs} ms`);
  }

  /** Resolves with the greeting line (already read, or the next QMP object); later QMP objects are not greetings. */
  async waitGreeting(): Promise<GreetingLine> {
    const line = await new Promise<GreetingLine>((resolve, reject) => {
      const life = this.life;
      if (life.state === 'closed') {
        reject(new QmpGreetingError(`${this.endpoint} closed the connection before greeting`));
        return;
      }
      const pending = life.state === 'opening' ? life.greeting : undefined;
      if (pending === undefined) {
        reject(new QmpGreetingError(`${this.endpoint} does not send a QMP greeting`));
        return;
      }
      if (pending.early !== undefined) {
        resolve(pending.early);
        return;
      }
      pending.waiter = { resolve, reject };
    });
    if (this.life.state === 'opening') this.life.greeting = undefined;
    return line;
  }

  /**
   * A non-event message read while the greeting may be pending. True when the handshake took it: a
   * greeting read before anyone asked is kept; one asked for resolves the wait, and any other message
   * in its place fails it. False when it is not the greeting's business (a reply, or no greeting due).
   */
  offerGreeting(line: string, msg: JsonObject): boolean {
    const greeting = this.life.state === 'opening' ? this.life.greeting : undefined;
    if (greeting === undefined) return false;
    const waiter = greeting.waiter;
    if (waiter === undefined) {
      if (!('QMP' in msg)) return false;
      greeting.early ??= { line, msg };
      return true;
    }
    greeting.waiter = undefined;
    if ('QMP' in msg) waiter.resolve({ line, msg });
    else waiter.reject(new QmpGreetingError(`expected a QMP greeting from ${this.endpoint}, got another message`, { received: clipLine(line) }));
    return true;
  }

  /**
   * The one way into the closed state. `failPending(why)` runs first (the calls still waiting), then
   * a pending greeting wait fails, then the close listeners hear of it. False when already closed.
   */
  close(cause: Error | undefined, byUs: boolean, failPending: (why: string) => void): boolean {
    if (this.life.state === 'closed') return false;
    const greeting = this.life.state === 'opening' ? this.life.greeting : undefined;
    this.life = { state: 'closed', byUs, reason: cause };
    const why = byUs ? 'closed by client' : cause ? describeError(cause) : 'closed by peer';
    failPending(why);
    if (greeting?.waiter) {
      const waiter = greeting.waiter;
      greeting.waiter = undefined;
      waiter.reject(cause instanceof QmpError ? cause : new QmpGreetingError(`${this.endpoint} closed the connection before greeting (${why})`));
    }
    const reported = byUs ? undefined : (cause ?? new QmpDisconnectedError(`${this.endpoint} closed the connection`));
    for (const listener of [...this.closeListeners]) {
      try {
        listener(reported);
      } catch {
        // a failing close listener must not stop the others
      }
    }
    return true;
  }

  /** Called once when the session ends: with the reason, or undefined when we closed it. */
  onClose(listener: (err?: Error) => void): () => void {
    if (this.life.state === 'closed') {
      const reason = this.life.byUs ? undefined : this.life.reason;
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => {
      this.closeListeners.delete(listener);
    };
  }
}
