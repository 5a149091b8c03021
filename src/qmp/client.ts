import { describeError } from '../util/errors';
import { isRecord } from '../util/guards';
import { timerMs } from '../util/time';
import { checkReply } from './reply-shapes';
import { parseEndpoint, type Endpoint } from './endpoint';
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
import { parseGreeting, parseVersion } from './messages';
import { assertCommandAllowed } from './safety';
import { SocketTransport } from './socket-transport';
import { Transcript } from './transcript';
import type { QmpTransport } from './transport';
import type { QmpEvent, QmpGreeting, TranscriptEntry } from './types';

export interface ConnectOptions {
  /** Transport connect + greeting + qmp_capabilities, in total. Default 5000. */
  connectTimeoutMs?: number;
  /** Default per-call timeout of execute()/hmp(). Default 30000; 0 or Infinity = none. */
  commandTimeoutMs?: number;
  /** Unsafe QMP commands (or HMP command words) the caller explicitly allows. */
  allow?: string[];
  /** Longest accepted line on a socket. Default 64 MiB (query-qmp-schema is ~340 KB). */
  maxLineBytes?: number;
  /** Events kept for replay. Default 10000, oldest dropped. */
  maxBufferedEvents?: number;
  /** Transcript entries kept. Default 100000, oldest dropped. */
  maxTranscriptEntries?: number;
  /** Check replies vmpm relies on against QMP's schema (reply-shapes.ts). Default true; protocol tests that script arbitrary replies turn it off. */
  checkReplyShapes?: boolean;
}

interface Call {
  command: string;
  args: Record<string, unknown> | undefined;
  sent: string;
  resolve: (r: { value: unknown; received: string }) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

type JsonObject = { [key: string]: JsonValue };
interface GreetingLine {
  line: string;
  msg: JsonObject;
}
/** The greeting while it is awaited: read early (before open() asked), or asked for and not read yet. */
interface PendingGreeting {
  early?: GreetingLine;
  waiter?: { resolve: (g: GreetingLine) => void; reject: (e: Error) => void };
}
type OpenPhase = 'connect' | 'greeting' | 'negotiation' | 'version';

/**
 * The session's life, one state instead of flags: opening (with the phase a timeout names, and the
 * greeting while it is awaited), open, or closed (by us or not, and why).
 */
type Life =
  | { state: 'opening'; phase: OpenPhase; greeting: PendingGreeting | undefined }
  | { state: 'open' }
  | { state: 'closed'; byUs: boolean; reason: Error | undefined };

/** Longest raw line kept inside an error object (full lines are in the transcript). */
const ERROR_LINE_CHARS = 2000;

/**
 * A QMP session over one transport (a QEMU monitor socket by default; see transport.ts). Replies are
 * matched to calls by a unique `id` (never by order); events are read as soon as they arrive and
 * buffered for late subscribers; every message is kept in a transcript; unsafe commands are refused
 * before they reach the transport.
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
  private readonly transport: QmpTransport;
  private readonly events: EventHub;
  private readonly log: Transcript;
  private readonly allow: ReadonlySet<string>;
  private readonly commandTimeoutMs: number;
  private readonly checkReplyShapes: boolean;
  /** Calls sent and not yet answered, in send order; null = timed out (kept for id-less error ordering). */
  private readonly inFlight = new Map<string, Call | null>();
  private nextId = 1;
  private greetingValue: QmpGreeting | undefined;
  private life: Life;
  private readonly closeListeners = new Set<(err?: Error) => void>();

  private constructor(transport: QmpTransport, options: ConnectOptions) {
    this.transport = transport;
    this.endpoint = transport.endpoint;
    this.events = new EventHub(options.maxBufferedEvents ?? 10_000);
    this.log = new Transcript(options.maxTranscriptEntries ?? 100_000);
    this.allow = new Set(options.allow ?? []);
    this.commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
    this.checkReplyShapes = options.checkReplyShapes ?? true;
    this.life = { state: 'opening', phase: 'connect', greeting: transport.capabilities.greeting ? {} : undefined };
  }

  /** Connects to a QEMU monitor socket, reads the greeting (events before it are buffered) and negotiates capabilities. */
  static async connect(endpoint: string | Endpoint, options: ConnectOptions = {}): Promise<QmpClient> {
    const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
    const transport = new SocketTransport(ep, options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes });
    return QmpClient.over(transport, options);
  }

  /**
   * A session over any transport. With a greeting transport: connect, greeting, qmp_capabilities.
   * Without (libvirt): connect, then `query-version` for the version; capabilities stay unknown.
   */
  static async over(transport: QmpTransport, options: ConnectOptions = {}): Promise<QmpClient> {
    const client = new QmpClient(transport, options);
    await client.open(options.connectTimeoutMs ?? 5000);
    return client;
  }

  get greeting(): QmpGreeting {
    if (this.greetingValue === undefined) throw new QmpError('QMP greeting not received yet');
    return this.greetingValue;
  }

  get closed(): boolean {
    return this.life.state === 'closed';
  }

  /** True when execute() may pass file descriptors (the transport's capability). */
  get canPassFds(): boolean {
    return this.transport.capabilities.fdPassing;
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

  private async open(requestedMs: number): Promise<void> {
    const timeoutMs = timerMs(requestedMs);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(this.life.state === 'opening' ? this.life.phase : 'connect', timeoutMs)), timeoutMs);
    });
    const step = <T>(phase: OpenPhase, p: () => Promise<T>): Promise<T> => {
      if (this.life.state === 'opening') this.life.phase = phase;
      const running = p();
      running.catch(() => undefined); // the loser of the race must not become an unhandled rejection
      return Promise.race([running, timedOut]);
    };
    try {
      await step('connect', () =>
        this.transport.connect({ onMessage: (text) => this.onLine(text), onClose: (reason) => this.handleClose(reason) }),
      );
      if (this.transport.capabilities.greeting) {
        this.greetingValue = await step('greeting', () => this.readGreeting());
        await step('negotiation', () => this.negotiate());
      } else {
        this.greetingValue = await step('version', () => this.queryVersion());
      }
      if (this.life.state === 'opening') this.life = { state: 'open' };
    } catch (err) {
      this.handleClose(err instanceof Error ? err : new QmpError(describeError(err)));
      this.transport.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async readGreeting(): Promise<QmpGreeting> {
    const greetingLine = await this.waitGreeting();
    if (this.life.state === 'opening') this.life.greeting = undefined; // read: later QMP objects are not greetings
    const greeting = parseGreeting(greetingLine.msg);
    if (greeting === undefined) {
      throw new QmpGreetingError(`malformed QMP greeting from ${this.endpoint}`, { received: clip(greetingLine.line) });
    }
    return greeting;
  }

  private async negotiate(): Promise<void> {
    await this.call('qmp_capabilities', undefined, Infinity).catch((err: unknown) => {
      if (err instanceof QmpCommandError) {
        throw new QmpNegotiationError(`qmp_capabilities refused by ${this.endpoint}: ${err.errorClass}: ${err.desc}`, {
          sent: err.sent,
          received: err.received,
        });
      }
      throw err;
    });
  }

  /** Without a greeting (libvirt consumed it) the version comes from query-version; capabilities are unknown. */
  private async queryVersion(): Promise<QmpGreeting> {
    const { value, received } = await this.call('query-version', undefined, Infinity);
    const version = parseVersion(value);
    if (version === undefined) throw new QmpProtocolError(`query-version on ${this.endpoint} returned an unexpected value`, { received: clip(received) });
    return { version };
  }

  private waitGreeting(): Promise<GreetingLine> {
    return new Promise((resolve, reject) => {
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
  }

  /**
   * Runs a QMP command and resolves with its `return` value. Integers beyond 2^53 come back as
   * bigint; bigint arguments are sent exactly. Rejects with QmpUnsafeCommandError (nothing sent),
   * QmpCommandError, QmpTimeoutError or QmpDisconnectedError.
   */
  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    options: { timeoutMs?: number; fds?: readonly number[] } = {},
  ): Promise<T> {
    const { value, received } = await this.call(command, args, options.timeoutMs ?? this.commandTimeoutMs, options.fds);
    // Replies vmpm relies on are checked against QMP's schema (reply-shapes.ts): a wrong shape is one line.
    if (this.checkReplyShapes) checkReply(command, value, clip(received));
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

  private call(
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs: number,
    fds?: readonly number[],
  ): Promise<{ value: unknown; received: string }> {
    return new Promise((resolve, reject) => {
      if (this.life.state === 'closed') {
        const reason = this.life.reason;
        reject(new QmpDisconnectedError(`not connected to ${this.endpoint} (connection closed${reason ? `: ${describeError(reason)}` : ''})`));
        return;
      }
      assertCommandAllowed(command, args, this.allow); // throws inside the executor -> rejection, nothing sent
      if (fds !== undefined && fds.length > 0 && !this.transport.capabilities.fdPassing) {
        reject(new QmpError(`${command} needs file descriptors passed, and ${this.endpoint} cannot pass them; nothing sent`));
        return;
      }
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
          reject(new QmpTimeoutError(command, timerMs(timeoutMs), { sent }));
        }, timerMs(timeoutMs));
      }
      this.inFlight.set(id, entry);
      this.log.record('tx', sent);
      this.transport.send(sent, fds);
    });
  }

  /** One message from the transport, in order. */
  private onLine(line: string): void {
    if (this.life.state === 'closed') return;
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
    const greeting = this.life.state === 'opening' ? this.life.greeting : undefined;
    if (typeof msg.event === 'string') {
      this.events.push(toEvent(msg, receivedAt));
    } else if (greeting !== undefined && greeting.waiter === undefined && 'QMP' in msg) {
      greeting.early ??= { line, msg };
    } else if (greeting?.waiter !== undefined) {
      const waiter = greeting.waiter;
      greeting.waiter = undefined;
      if ('QMP' in msg) waiter.resolve({ line, msg });
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
    this.handleClose(err);
    this.transport.destroy();
  }

  /** The one way into the closed state: fails what is pending and tells the close listeners. */
  private handleClose(cause: Error | undefined, byUs = false): void {
    if (this.life.state === 'closed') return;
    const greeting = this.life.state === 'opening' ? this.life.greeting : undefined;
    this.life = { state: 'closed', byUs, reason: cause };
    const why = byUs ? 'closed by client' : cause ? describeError(cause) : 'closed by peer';
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
        timer = setTimeout(() => finish(() => reject(new QmpTimeoutError(`wait for ${name}`, timerMs(timeoutMs)))), timerMs(timeoutMs));
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

  /** Closes the connection; pending calls fail with QmpDisconnectedError. Idempotent. */
  async close(): Promise<void> {
    if (this.life.state !== 'closed') {
      this.handleClose(undefined, true);
      await this.transport.close();
    }
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
