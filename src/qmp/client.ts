import { describeError } from '../util/errors';
import { checkReply } from './reply-shapes';
import { parseEndpoint, type Endpoint } from './endpoint';
import { clipLine as clip, QmpCommandError, QmpDisconnectedError, QmpError, QmpGreetingError, QmpHmpError, QmpNegotiationError, QmpProtocolError } from './errors';
import { EventHub, eventFromMessage, type EventListener } from './events';
import { hmpErrorLine } from './hmp-errors';
import { parseGreeting, parseVersion, readMessage } from './messages';
import { PendingCalls, type CallResult } from './pending-calls';
import { assertCommandAllowed } from './safety';
import { SessionLife } from './session-life';
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

/**
 * A QMP session over one transport (a QEMU monitor socket by default; see transport.ts), put together
 * as qemu.qmp's QMPClient is from smaller parts, each with one job:
 *   - SessionLife (session-life.ts): the state machine (opening → open → closed), open deadlines and
 *     the greeting handshake, close listeners;
 *   - PendingCalls (pending-calls.ts): command ids, reply matching (never by order), call timeouts;
 *   - EventHub (events.ts): events read as soon as they arrive, buffered for late subscribers;
 *   - Transcript (transcript.ts): every line sent and received;
 * and unsafe commands are refused (safety.ts) before anything reaches the transport. This class routes
 * each received line to the part it belongs to and keeps the public API.
 */
export class QmpClient {
  readonly endpoint: string;
  private readonly transport: QmpTransport;
  private readonly events: EventHub;
  private readonly log: Transcript;
  private readonly calls: PendingCalls;
  private readonly life: SessionLife;
  private readonly allow: ReadonlySet<string>;
  private readonly commandTimeoutMs: number;
  private readonly checkReplyShapes: boolean;
  private greetingValue: QmpGreeting | undefined;

  private constructor(transport: QmpTransport, options: ConnectOptions) {
    this.transport = transport;
    this.endpoint = transport.endpoint;
    this.events = new EventHub(options.maxBufferedEvents ?? 10_000);
    this.log = new Transcript(options.maxTranscriptEntries ?? 100_000);
    this.calls = new PendingCalls(transport.endpoint);
    this.life = new SessionLife(transport.endpoint, transport.capabilities.greeting);
    this.allow = new Set(options.allow ?? []);
    this.commandTimeoutMs = options.commandTimeoutMs ?? 30_000;
    this.checkReplyShapes = options.checkReplyShapes ?? true;
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
    return this.life.closed;
  }

  /** Which QEMU process this session reaches, when the transport can tell (QmpTransport.instance); null when it cannot. */
  get instance(): string | null {
    return this.transport.instance ?? null;
  }

  /** True when execute() may pass file descriptors (the transport's capability). */
  get canPassFds(): boolean {
    return this.transport.capabilities.fdPassing;
  }

  private async open(requestedMs: number): Promise<void> {
    try {
      await this.life.within(requestedMs, async (step) => {
        await step('connect', () =>
          this.transport.connect({ onMessage: (text) => this.onLine(text), onClose: (reason) => this.handleClose(reason) }),
        );
        if (this.transport.capabilities.greeting) {
          this.greetingValue = await step('greeting', () => this.readGreeting());
          await step('negotiation', () => this.negotiate());
        } else {
          this.greetingValue = await step('version', () => this.queryVersion());
        }
      });
      this.life.opened();
    } catch (err) {
      this.handleClose(err instanceof Error ? err : new QmpError(describeError(err)));
      this.transport.destroy();
      throw err;
    }
  }

  private async readGreeting(): Promise<QmpGreeting> {
    const greetingLine = await this.life.waitGreeting();
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

  /** Every command goes through here: refused when closed, unsafe, or asking for fds the transport cannot pass. */
  private async call(command: string, args: Record<string, unknown> | undefined, timeoutMs: number, fds?: readonly number[]): Promise<CallResult> {
    if (this.life.closed) {
      const reason = this.life.closeReason;
      throw new QmpDisconnectedError(`not connected to ${this.endpoint} (connection closed${reason ? `: ${describeError(reason)}` : ''})`);
    }
    assertCommandAllowed(command, args, this.allow); // nothing sent
    if (fds !== undefined && fds.length > 0 && !this.transport.capabilities.fdPassing) {
      throw new QmpError(`${command} needs file descriptors passed, and ${this.endpoint} cannot pass them; nothing sent`);
    }
    return this.calls.start(command, args, timeoutMs, (sent) => {
      this.log.record('tx', sent);
      this.transport.send(sent, fds);
    });
  }

  /** One message from the transport, in order: to the event hub, the greeting handshake or the pending calls. */
  private onLine(line: string): void {
    if (this.life.closed) return;
    const receivedAt = new Date();
    this.log.record('rx', line, receivedAt);
    if (line.trim() === '') return;
    const msg = readMessage(line, this.endpoint);
    if (msg instanceof QmpProtocolError) return this.fail(msg);
    if (typeof msg.event === 'string') this.events.push(eventFromMessage(msg, receivedAt));
    else if (this.life.offerGreeting(line, msg)) return;
    else if ('return' in msg || 'error' in msg) this.calls.settle(msg, line);
    else this.fail(new QmpProtocolError(`${this.endpoint} sent a message that is neither reply nor event; connection closed`, { received: clip(line) }));
  }

  /** Fatal protocol trouble: close at once and fail everything pending with `err`. */
  private fail(err: QmpProtocolError): void {
    this.handleClose(err);
    this.transport.destroy();
  }

  /** The one way into the closed state: fails what is pending and tells the close listeners. */
  private handleClose(cause: Error | undefined, byUs = false): void {
    this.life.close(cause, byUs, (why) => this.calls.failAll(cause, why));
  }

  /** Subscribe to events; by default first replays everything buffered since connect. */
  onEvent(listener: (e: QmpEvent) => void, options: { replay?: boolean } = {}): () => void {
    return this.events.subscribe(listener as EventListener, options.replay ?? true);
  }

  /** Resolves with the first matching event (already-received ones included unless includeBuffered=false). */
  waitForEvent(match: string | ((e: QmpEvent) => boolean), options: { timeoutMs?: number; includeBuffered?: boolean } = {}): Promise<QmpEvent> {
    return this.events.waitFor(typeof match === 'string' ? (e: QmpEvent) => e.event === match : match, {
      name: typeof match === 'string' ? match : 'matching event',
      endpoint: this.endpoint,
      timeoutMs: options.timeoutMs ?? this.commandTimeoutMs,
      includeBuffered: options.includeBuffered ?? true,
      onClose: (listener) => this.onClose(listener),
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
    return this.life.onClose(listener);
  }

  /** Closes the connection; pending calls fail with QmpDisconnectedError. Idempotent. */
  async close(): Promise<void> {
    if (!this.life.closed) {
      this.handleClose(undefined, true);
      await this.transport.close();
    }
  }
}
