import { describeError } from '../util/errors';
import { isRecord } from '../util/guards';
import { ioDeadline, type IoDeadline } from '../util/io-deadline';
import { timerMs } from '../util/time';
import { clipLine, QmpCommandError, QmpDisconnectedError, QmpError, QmpProtocolError, QmpTimeoutError } from './errors';
import { stringifyJson, type JsonValue } from './json';

/** What a call resolves with: the `return` value and the raw reply line (for error context). */
export interface CallResult {
  value: unknown;
  received: string;
}

interface Call {
  command: string;
  args: Record<string, unknown> | undefined;
  sent: string;
  resolve: (r: CallResult) => void;
  reject: (err: Error) => void;
  deadline?: IoDeadline;
}

/**
 * Command execution and reply matching, the job of qemu.qmp's `_execute`/`_on_message` pair: every
 * request gets a unique `id` and replies are matched by it, never by order.
 *
 * Id-less replies: per qmp-spec.rst, QEMU omits `id` only on an error for a request it could not
 * parse far enough to read the id. vmpm does not enable the `oob` capability, so QEMU handles
 * requests strictly in order, and such an error belongs to the oldest request still awaiting a reply:
 * that call fails with the error (or, if it already timed out, the error is dropped). An id-less
 * *success*, or a reply with an unknown id, is dropped as the spec says ("Clients should drop all the
 * responses that have an unknown id"); the session's transcript still has it.
 */
export class PendingCalls {
  /** Calls sent and not yet answered, in send order; null = timed out (kept for id-less error ordering). */
  private readonly inFlight = new Map<string, Call | null>();
  private nextId = 1;

  constructor(private readonly endpoint: string) {}

  /**
   * Encodes `command` with a fresh id, hands the text to `transmit` and resolves with the reply. Rejects
   * (with nothing transmitted) when the arguments cannot be encoded; with QmpTimeoutError after
   * `timeoutMs` (0 or Infinity: never).
   */
  start(command: string, args: Record<string, unknown> | undefined, timeoutMs: number, transmit: (text: string) => void): Promise<CallResult> {
    return new Promise((resolve, reject) => {
      const id = `vmpm-${this.nextId++}`;
      let sent: string;
      try {
        sent = stringifyJson(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id });
      } catch (err) {
        reject(new QmpError(`cannot encode arguments of ${command} as JSON: ${describeError(err)}`));
        return;
      }
      const entry: Call = { command, args, sent, resolve, reject };
      if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
        // A reply that reached the kernel while vmpm's loop was stalled still counts (io-deadline.ts).
        entry.deadline = ioDeadline(timeoutMs, () => {
          if (this.inFlight.get(id) !== entry) return;
          this.inFlight.set(id, null); // keep its place: QEMU may still answer (late reply is dropped)
          reject(new QmpTimeoutError(command, timerMs(timeoutMs), { sent }));
        });
      }
      this.inFlight.set(id, entry);
      transmit(sent);
    });
  }

  /** A reply ({"return"} or {"error"}) read from the peer: settles the call it answers, if any is waiting. */
  settle(msg: { [key: string]: JsonValue }, line: string): void {
    let id: string | undefined;
    if (msg.id === undefined) {
      if (!('error' in msg)) return; // id-less success: unknown id, dropped (see class comment)
      id = this.inFlight.keys().next().value; // the oldest request awaiting a reply
      if (id === undefined) return;
    } else {
      if (typeof msg.id !== 'string' || !this.inFlight.has(msg.id)) return; // unknown id: dropped
      id = msg.id;
    }
    const call = this.inFlight.get(id);
    this.inFlight.delete(id);
    if (!call) return; // it already timed out
    call.deadline?.cancel();
    if ('error' in msg) {
      const error = msg.error;
      const errorClass = isRecord(error) && typeof error.class === 'string' ? error.class : 'GenericError';
      const desc = isRecord(error) && typeof error.desc === 'string' ? error.desc : stringifyJson(error);
      const note = msg.id === undefined ? 'id-less error reply, attributed to the oldest pending command' : undefined;
      call.reject(new QmpCommandError(call.command, call.args, errorClass, desc, { sent: call.sent, received: clipLine(line), ...(note ? { note } : {}) }));
    } else {
      call.resolve({ value: msg.return, received: line });
    }
  }

  /** The connection ended: every waiting call fails (with the protocol error itself when that was the cause). */
  failAll(cause: Error | undefined, why: string): void {
    for (const call of this.inFlight.values()) {
      if (!call) continue;
      call.deadline?.cancel();
      call.reject(
        cause instanceof QmpProtocolError
          ? cause
          : new QmpDisconnectedError(`connection to ${this.endpoint} lost before ${call.command} was answered (${why})`, { sent: call.sent, cause }),
      );
    }
    this.inFlight.clear();
  }
}
