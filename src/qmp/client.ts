import { statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { describeError } from '../util/errors';
import { isRecord } from '../util/guards';
import { formatEndpoint, parseEndpoint, type Endpoint } from './endpoint';
import {
  QmpCommandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpError,
  QmpGreetingError,
  QmpHmpError,
  QmpNegotiationError,
  QmpProtocolError,
  QmpTimeoutError,
} from './errors';
import { EventHub, type EventListener } from './events';
import { hmpErrorLine } from './hmp-errors';
import { parseJson, stringifyJson, type JsonValue } from './json';
import { LineReader, LineTooLongError } from './line-reader';
import { parseGreeting } from './messages';
import { assertCommandAllowed } from './safety';
import { Transcript } from './transcript';
import type { QmpEvent, QmpGreeting, TranscriptEntry } from './types';

export interface ConnectOptions {
  /** Socket connect + greeting + qmp_capabilities, in total. Default 5000. */
  connectTimeoutMs?: number;
  /** Default per-call timeout of execute()/hmp(). Default 30000; 0 or Infinity = none. */
  commandTimeoutMs?: number;
  /** Unsafe QMP commands (or HMP command words) the caller explicitly allows. */
  allow?: string[];
  /** Longest accepted line. Default 64 MiB (query-qmp-schema is ~340 KB). */
  maxLineBytes?: number;
  /** Events kept for replay. Default 10000, oldest dropped. */
  maxBufferedEvents?: number;
  /** Transcript entries kept. Default 100000, oldest dropped. */
  maxTranscriptEntries?: number;
}

interface Call {
  command: string;
  args: Record<string, unknown> | undefined;
  sent: string;
  resolve: (r: { value: unknown; received: string }) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Longest raw line kept inside an error object (full lines are in the transcript). */
const ERROR_LINE_CHARS = 2000;

/**
 * A QMP client for one monitor connection. Replies are matched to calls by a unique `id` (never by
 * order); events are read as soon as they arrive and buffered for late subscribers; every line is
 * kept in a transcript; unsafe commands are refused before they reach the socket.
 *
 * Id-less replies: per qmp-spec.rst, QEMU omits `id` only on an error for a request it could not
 * parse far enough to read the id. vmpm does not enable the `oob` capability, so QEMU handles
 * requests strictly in order, and such an error belongs to the oldest request still awaiting a reply:
 * that call fails with the error (or, if it already timed out, the error is dropped). The connection
 * stays up. An id-less *success*, or a reply with an unknown id, is dropped as the spec says
 * ("Clients should drop all the responses that have an unknown id") and stays visible in the transcript.
 */
export class QmpClient {
  readonly endpoint: string;
  private readonly socket: Socket;
  private readonly reader: LineReader;
  private readonly events: EventHub;
  private readonly log: Transcript;
  private readonly allow: ReadonlySet<string>;
  private readonly commandTimeoutMs: number;
  /** Calls sent and not yet answered, in send order; null = timed out (kept for id-less error ordering). */
  private readonly inFlight = new Map<string, Call | null>();
  private nextId = 1;
  private greetingValue: QmpGreeting | undefined;
  private greetingWaiter: { resolve: (line: string, msg: Record<string, JsonValue>) => void; reject: (e: Error) => void } | undefined;
  /** A greeting read before open() started waiting for it. */
  private earlyGreeting: { line: string; msg: Record<string, JsonValue> } | undefined;
  private isClosed = false;
  private closedByUs = false;
  private closeReason: Error | undefined;
  private socketError: Error | undefined;
  private readonly closeListeners = new Set<(err?: Error) => void>();
  private readonly socketClosed: Promise<void>;

  private constructor(endpoint: Endpoint, options: ConnectOptions) {
    this.endpoint = formatEndpoint(endpoint);
    this.reader = new LineReader(options.maxLineBytes ?? 64 * 1024 * 1024);
    this.events = new EventHub(options.maxBufferedEvents ?? 10_000);
    this.log = new Transcript(options.maxTranscriptEntries ?? 100_000);
    this.allow = new Set(options.allow ?? []);
    this.commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
    this.socket =
      endpoint.kind === 'unix' ? createConnection({ path: endpoint.path }) : createConnection({ host: endpoint.host, port: endpoint.port });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => {
      this.socketError = err;
    });
    this.socketClosed = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.handleClose(this.closeReason ?? this.socketError);
        resolve();
      });
    });
  }

  /** Connects, reads the greeting (events before it are buffered) and negotiates capabilities. */
  static async connect(endpoint: string | Endpoint, options: ConnectOptions = {}): Promise<QmpClient> {
    const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
    const client = new QmpClient(ep, options);
    await client.open(options.connectTimeoutMs ?? 5000, ep);
    return client;
  }

  get greeting(): QmpGreeting {
    if (this.greetingValue === undefined) throw new QmpError('QMP greeting not received yet');
    return this.greetingValue;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  private async open(timeoutMs: number, ep: Endpoint): Promise<void> {
    let phase: 'connect' | 'greeting' | 'negotiation' = 'connect';
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (phase === 'connect') reject(new QmpConnectError(`could not connect to ${this.endpoint} within ${timeoutMs} ms`, { code: 'ETIMEDOUT' }));
        else if (phase === 'greeting')
          reject(
            new QmpGreetingError(
              `no QMP greeting from ${this.endpoint} within ${timeoutMs} ms (is another client connected? QEMU serves one client per monitor socket)`,
              { timedOut: true },
            ),
          );
        else reject(new QmpNegotiationError(`qmp_capabilities on ${this.endpoint} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    const step = <T>(p: Promise<T>): Promise<T> => {
      p.catch(() => undefined); // the loser of the race must not become an unhandled rejection
      return Promise.race([p, timedOut]);
    };
    try {
      await step(this.waitConnected(ep));
      phase = 'greeting';
      const greetingLine = await step(this.waitGreeting());
      const greeting = parseGreeting(greetingLine.msg);
      if (greeting === undefined) {
        throw new QmpGreetingError(`malformed QMP greeting from ${this.endpoint}`, { received: clip(greetingLine.line) });
      }
      this.greetingValue = greeting;
      phase = 'negotiation';
      await step(this.call('qmp_capabilities', undefined, Infinity)).catch((err: unknown) => {
        if (err instanceof QmpCommandError) {
          throw new QmpNegotiationError(`qmp_capabilities refused by ${this.endpoint}: ${err.errorClass}: ${err.desc}`, {
            sent: err.sent,
            received: err.received,
          });
        }
        throw err;
      });
    } catch (err) {
      this.closeReason ??= err instanceof Error ? err : new QmpError(describeError(err));
      this.socket.destroy();
      this.handleClose(this.closeReason);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private waitConnected(ep: Endpoint): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', (err: NodeJS.ErrnoException) => reject(connectError(err, ep, this.endpoint)));
    });
  }

  private waitGreeting(): Promise<{ line: string; msg: Record<string, JsonValue> }> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) {
        reject(new QmpGreetingError(`${this.endpoint} closed the connection before greeting`));
        return;
      }
      if (this.earlyGreeting !== undefined) {
        resolve(this.earlyGreeting);
        return;
      }
      this.greetingWaiter = { resolve: (line, msg) => resolve({ line, msg }), reject };
    });
  }

  /**
   * Runs a QMP command and resolves with its `return` value. Integers beyond 2^53 come back as
   * bigint; bigint arguments are sent exactly. Rejects with QmpUnsafeCommandError (nothing sent),
   * QmpCommandError, QmpTimeoutError or QmpDisconnectedError.
   */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<T> {
    const { value } = await this.call(command, args, options.timeoutMs ?? this.commandTimeoutMs);
    return value as T;
  }

  /** Runs an HMP command line; HMP error texts (returned by QEMU as success) reject with QmpHmpError. */
  async hmp(commandLine: string, options: { cpuIndex?: number; timeoutMs?: number } = {}): Promise<string> {
    const args: Record<string, unknown> = { 'command-line': commandLine };
    if (options.cpuIndex !== undefined) args['cpu-index'] = options.cpuIndex;
    const { value, received } = await this.call('human-monitor-command', args, options.timeoutMs ?? this.commandTimeoutMs);
    if (typeof value !== 'string') {
      throw new QmpProtocolError(`human-monitor-command returned ${typeof value}, expected a string`, { received: clip(received) });
    }
    if (hmpErrorLine(value) !== undefined) {
      throw new QmpHmpError(commandLine, value, { received: clip(received) });
    }
    return value;
  }

  private call(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<{ value: unknown; received: string }> {
    return new Promise((resolve, reject) => {
      if (this.isClosed) {
        reject(new QmpDisconnectedError(`not connected to ${this.endpoint} (connection closed${this.closeReason ? `: ${describeError(this.closeReason)}` : ''})`));
        return;
      }
      assertCommandAllowed(command, args, this.allow); // throws inside the executor -> rejection, nothing sent
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
        entry.timer = setTimeout(() => {
          if (this.inFlight.get(id) !== entry) return;
          this.inFlight.set(id, null); // keep its place: QEMU may still answer (late reply is dropped)
          reject(new QmpTimeoutError(command, timeoutMs, { sent }));
        }, timeoutMs);
      }
      this.inFlight.set(id, entry);
      this.log.record('tx', sent);
      this.socket.write(`${sent}\n`);
    });
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.reader.push(chunk);
    } catch (err) {
      if (err instanceof LineTooLongError) {
        this.fail(new QmpProtocolError(`${this.endpoint} sent a line longer than ${err.limit} bytes; connection closed`));
        return;
      }
      throw err;
    }
    for (const line of lines) {
      if (this.isClosed) return;
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const receivedAt = new Date();
    this.log.record('rx', line, receivedAt);
    if (line.trim() === '') return;
    let msg: JsonValue;
    try {
      msg = parseJson(line);
    } catch (err) {
      this.fail(new QmpProtocolError(`${this.endpoint} sent invalid JSON (${describeError(err)}); connection closed`, { received: clip(line) }));
      return;
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.fail(new QmpProtocolError(`${this.endpoint} sent a JSON value that is not an object; connection closed`, { received: clip(line) }));
      return;
    }
    if (typeof msg.event === 'string') {
      this.events.push(toEvent(msg, receivedAt));
    } else if (this.greetingValue === undefined && this.greetingWaiter === undefined && 'QMP' in msg) {
      this.earlyGreeting ??= { line, msg };
    } else if (this.greetingValue === undefined && this.greetingWaiter !== undefined) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      if ('QMP' in msg) waiter.resolve(line, msg);
      else waiter.reject(new QmpGreetingError(`expected a QMP greeting from ${this.endpoint}, got another message`, { received: clip(line) }));
    } else if ('return' in msg || 'error' in msg) {
      this.onReply(msg, line);
    } else {
      this.fail(new QmpProtocolError(`${this.endpoint} sent a message that is neither reply nor event; connection closed`, { received: clip(line) }));
    }
  }

  private onReply(msg: { [key: string]: JsonValue }, line: string): void {
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
    clearTimeout(call.timer);
    if ('error' in msg) {
      const error = msg.error;
      const errorClass = isRecord(error) && typeof error.class === 'string' ? error.class : 'GenericError';
      const desc = isRecord(error) && typeof error.desc === 'string' ? error.desc : stringifyJson(error);
      const note = msg.id === undefined ? 'id-less error reply, attributed to the oldest pending command' : undefined;
      call.reject(new QmpCommandError(call.command, call.args, errorClass, desc, { sent: call.sent, received: clip(line), ...(note ? { note } : {}) }));
    } else {
      call.resolve({ value: msg.return, received: line });
    }
  }

  /** Fatal protocol trouble: close at once and fail everything pending with `err`. */
  private fail(err: QmpProtocolError): void {
    this.closeReason ??= err;
    this.socket.destroy();
    this.handleClose(err);
  }

  private handleClose(cause: Error | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeReason ??= cause;
    const why = this.closedByUs ? 'closed by client' : cause ? describeError(cause) : 'closed by peer';
    for (const call of this.inFlight.values()) {
      if (!call) continue;
      clearTimeout(call.timer);
      call.reject(
        cause instanceof QmpProtocolError
          ? cause
          : new QmpDisconnectedError(`connection to ${this.endpoint} lost before ${call.command} was answered (${why})`, { sent: call.sent, cause }),
      );
    }
    this.inFlight.clear();
    if (this.greetingWaiter) {
      const waiter = this.greetingWaiter;
      this.greetingWaiter = undefined;
      waiter.reject(cause instanceof QmpError ? cause : new QmpGreetingError(`${this.endpoint} closed the connection before greeting (${why})`));
    }
    const reported = this.closedByUs ? undefined : (this.closeReason ?? new QmpDisconnectedError(`${this.endpoint} closed the connection`));
    for (const listener of [...this.closeListeners]) {
      try {
        listener(reported);
      } catch {
        // a failing close listener must not stop the others
      }
    }
  }

  /** Subscribe to events; by default first replays everything buffered since connect. */
  onEvent(listener: (e: QmpEvent) => void, options: { replay?: boolean } = {}): () => void {
    return this.events.subscribe(listener as EventListener, options.replay ?? true);
  }

  /** Resolves with the first matching event (already-received ones included unless includeBuffered=false). */
  waitForEvent(match: string | ((e: QmpEvent) => boolean), options: { timeoutMs?: number; includeBuffered?: boolean } = {}): Promise<QmpEvent> {
    const test = typeof match === 'string' ? (e: QmpEvent) => e.event === match : match;
    const name = typeof match === 'string' ? match : 'matching event';
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    return new Promise((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      let unsubscribeClose: () => void = () => undefined;
      let unsubscribe: () => void = () => undefined;
      const finish = (fn: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe();
        unsubscribeClose();
        fn();
      };
      unsubscribe = this.events.subscribe((e) => {
        if (test(e)) finish(() => resolve(e));
      }, options.includeBuffered ?? true);
      if (done) {
        unsubscribe();
        return;
      }
      unsubscribeClose = this.onClose((err) =>
        finish(() => reject(new QmpDisconnectedError(`connection to ${this.endpoint} closed while waiting for ${name}`, { cause: err }))),
      );
      if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
        timer = setTimeout(() => finish(() => reject(new QmpTimeoutError(`wait for ${name}`, timeoutMs))), timeoutMs);
      }
    });
  }

  bufferedEvents(): QmpEvent[] {
    return this.events.buffered();
  }

  droppedEvents(): number {
    return this.events.droppedCount();
  }

  transcript(): TranscriptEntry[] {
    return this.log.snapshot();
  }

  /** Called once when the socket closes: with the reason, or undefined when we closed it. */
  onClose(listener: (err?: Error) => void): () => void {
    if (this.isClosed) {
      const reason = this.closedByUs ? undefined : this.closeReason;
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => {
      this.closeListeners.delete(listener);
    };
  }

  /** Closes the connection; pending calls fail with QmpDisconnectedError. Idempotent. */
  async close(): Promise<void> {
    if (!this.isClosed) {
      this.closedByUs = true;
      this.handleClose(undefined);
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      await this.socketClosed;
      clearTimeout(timer);
    }
  }
}

function connectError(err: NodeJS.ErrnoException, ep: Endpoint, endpoint: string): QmpConnectError {
  const code = err.code;
  const where = ep.kind === 'unix' ? ep.path : endpoint;
  const misplaced = code === 'ECONNREFUSED' && ep.kind === 'unix' ? notASocket(ep.path) : undefined;
  let text: string;
  if (code === 'ENOENT') text = `no QMP socket at ${where} (is QEMU running with -qmp unix:${where},server=on,wait=off?)`;
  else if (misplaced !== undefined) text = `${where} is ${misplaced}, not a socket (expected QEMU's -qmp unix:PATH,server=on socket)`;
  else if (code === 'ECONNREFUSED') text = `connection refused by ${endpoint} (QEMU not running, or a stale socket)`;
  else if (code === 'EACCES' || code === 'EPERM') text = `permission denied connecting to ${where}`;
  else if (code === 'ENOTSOCK') text = `${where} is not a socket`;
  else text = `cannot connect to ${endpoint}: ${err.message}`;
  return new QmpConnectError(text, { ...(code !== undefined ? { code } : {}), cause: err });
}

/** Linux refuses a connect() to a regular file or directory with ECONNREFUSED; say what the path really is. */
function notASocket(path: string): string | undefined {
  try {
    const info = statSync(path);
    if (info.isSocket()) return undefined;
    return info.isDirectory() ? 'a directory' : info.isFile() ? 'a regular file' : 'not a socket file';
  } catch {
    return undefined;
  }
}

function toEvent(msg: { [key: string]: JsonValue }, receivedAt: Date): QmpEvent {
  const ts = msg.timestamp;
  const seconds = isRecord(ts) && typeof ts.seconds === 'number' ? ts.seconds : -1;
  const microseconds = isRecord(ts) && typeof ts.microseconds === 'number' ? ts.microseconds : -1;
  const e: QmpEvent = { event: msg.event as string, timestamp: { seconds, microseconds }, receivedAt };
  if (isRecord(msg.data)) e.data = { ...msg.data };
  return e;
}

function clip(line: string): string {
  return line.length > ERROR_LINE_CHARS ? `${line.slice(0, ERROR_LINE_CHARS)}... (${line.length} chars)` : line;
}
