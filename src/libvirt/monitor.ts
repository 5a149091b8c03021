/**
 * A libvirt domain seen as a QMP monitor: QMP request lines in, reply and event lines out, each
 * request carried out through virsh (commands.ts says how). The QMP session above it (src/qmp) keeps
 * its safety allow-list, ids, timeouts and typed errors unchanged; capture, watch and state work the
 * same on a libvirt domain as on a QMP socket.
 *
 * Events: QEMU's own events from `virsh qemu-monitor-event DOM --loop` (QEMU's timestamp kept), and
 * libvirt's domain events from `virsh event DOM --all --loop`, passed on as LIBVIRT_<KIND> events
 * (LIBVIRT_LIFECYCLE {"event":"Crashed","detail":"Panicked"}) so the journal has libvirt's view too.
 * The monitor closes when the domain stops (lifecycle Stopped), when libvirtd goes away (a stream
 * ends), or on close(); like QEMU closing its socket, that tells a watcher to reconnect.
 *
 * Transcript: every virsh call and its output travel with the reply to the QMP request they carried
 * out, as a `virsh` member ({"return":{},"id":"vmpm-3","virsh":[{"at","dir":"tx","line":"virsh -c
 * qemu:///system suspend web1"},{"at","dir":"rx","line":"Domain 'web1' suspended"}]}); an event
 * carries the virsh line it came from. The QMP session ignores the member and records the whole
 * message, so the bundle's transcript holds both the QMP exchange and how libvirt carried it out.
 * Calls made while opening (dominfo, domstate, version, dumpxml) travel with the first reply.
 *
 * Window: libvirt registers an event callback some milliseconds after virsh starts. The streams are
 * started first and the facts read after them, so events from then on are seen; what happened
 * before shows in the run state (watch's catch-up covers a panic that came earlier).
 */
import { stringifyJson, parseJson, type JsonValue } from '../qmp';
import { describeError } from '../util/errors';
import { CommandRefused, runCommand, type CommandContext } from './commands';
import { domainConfig, domainInfo, domainState, readinessWarnings, versions, type DomainConfig, type DomainState } from './domain';
import { LibvirtError, virshFailure } from './errors';
import { parseDomainEventLine, parseQemuEventLine, splitLifecycle } from './event-lines';
import { qmpStatusOf } from './run-state';
import { VirshStream } from './stream';
import { Virsh, type VirshExchange } from './virsh';

export interface LibvirtTarget {
  domain: string;
  /** libvirt connection URI (--connect); undefined: virsh's default. */
  uri?: string;
}

export interface LibvirtFacts {
  domain: string;
  name: string;
  uuid: string;
  /** The domain's id (`virsh dominfo` Id): libvirt gives each start of the domain a new one, kept while that QEMU runs (across libvirtd restarts). */
  id: number | null;
  uri: string | null;
  libvirtVersion: string | null;
  qemuVersion: string | null;
  config: DomainConfig;
  stateAtOpen: DomainState;
}

export interface LibvirtMonitorOptions {
  /** Per virsh call (default 30 s; dump-guest-memory gets the caller's own, longer, timeout). */
  timeoutMs?: number;
  /** Every virsh exchange and stream line, as it happens. */
  record?: (e: VirshExchange) => void;
}

/** `libvirt:DOMAIN` or `libvirt:DOMAIN@URI`: how logs, notifications and transcripts name the monitor. */
export function libvirtEndpoint(t: LibvirtTarget): string {
  return t.uri === undefined ? `libvirt:${t.domain}` : `libvirt:${t.domain}@${t.uri}`;
}

export class LibvirtMonitor {
  readonly endpoint: string;
  private readonly lineListeners = new Set<(line: string) => void>();
  private readonly closeListeners = new Set<(err?: Error) => void>();
  private readonly streams: VirshStream[] = [];
  private queue: Promise<void> = Promise.resolve();
  private closedWith: { err: Error | undefined } | undefined;
  private factsValue: LibvirtFacts | undefined;
  /** virsh exchanges not yet attached to a reply. */
  private pending: VirshExchange[] = [];

  private constructor(
    readonly target: LibvirtTarget,
    readonly virsh: Virsh,
    private readonly record: ((e: VirshExchange) => void) | undefined,
  ) {
    this.endpoint = libvirtEndpoint(target);
  }

  /** Starts the event streams, then reads the domain's facts; a domain that is not running is an error. */
  static async open(target: LibvirtTarget, options: LibvirtMonitorOptions = {}): Promise<LibvirtMonitor> {
    let m: LibvirtMonitor | undefined;
    const record = (e: VirshExchange): void => {
      m?.pending.push(e);
      options.record?.(e);
    };
    const virsh = new Virsh({ ...(target.uri !== undefined ? { uri: target.uri } : {}), ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}), record });
    m = new LibvirtMonitor(target, virsh, options.record);
    try {
      m.startStreams();
      const info = await domainInfo(virsh, target.domain);
      const state = await domainState(virsh, target.domain);
      if (qmpStatusOf(state) === null) {
        throw new LibvirtError(`libvirt domain ${JSON.stringify(target.domain)} is ${state.text}: there is no QEMU process to inspect`, 'not-running', state.text);
      }
      const v = await versions(virsh);
      const config = await domainConfig(virsh, target.domain);
      // A stream that failed while the facts were read (e.g. a read-only connection may read but not subscribe).
      if (m.closedWith?.err) throw m.closedWith.err;
      m.factsValue = { domain: target.domain, name: info.name, uuid: info.uuid, id: info.id, uri: target.uri ?? null, libvirtVersion: v.libvirt, qemuVersion: v.qemu, config, stateAtOpen: state };
    } catch (err) {
      await m.shutdown(undefined);
      throw err;
    }
    return m;
  }

  get facts(): LibvirtFacts {
    if (!this.factsValue) throw new Error('libvirt monitor not open');
    return this.factsValue;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  onLine(listener: (line: string) => void): () => void {
    this.lineListeners.add(listener);
    return () => this.lineListeners.delete(listener);
  }

  /** Called once: with the reason, or undefined when close() ended it. */
  onClose(listener: (err?: Error) => void): () => void {
    if (this.closedWith) {
      const err = this.closedWith.err;
      queueMicrotask(() => listener(err));
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** One QMP request line; its reply line comes back through onLine, in request order. */
  send(line: string): void {
    this.queue = this.queue.then(() => this.handle(line));
  }

  async close(): Promise<void> {
    await this.shutdown(undefined);
  }

  private async handle(line: string): Promise<void> {
    if (this.closedWith) return;
    let id: JsonValue | undefined;
    let reply: Record<string, JsonValue>;
    try {
      const msg = parseJson(line);
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.execute !== 'string') {
        throw new CommandRefused('GenericError', 'expected a QMP command object with "execute"');
      }
      id = msg.id;
      const args = msg.arguments;
      const argObject = args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>) : undefined;
      reply = { return: await runCommand(this.context(), msg.execute, argObject) };
    } catch (err) {
      reply = err instanceof CommandRefused ? { error: { class: err.errorClass, desc: err.desc } } : { error: { class: 'GenericError', desc: describeError(err) } };
    }
    if (id !== undefined) reply.id = id;
    const virsh = this.pending.splice(0);
    if (virsh.length > 0) reply.virsh = virsh.map((e) => ({ at: e.at, dir: e.dir, line: e.line }));
    this.emit(stringifyJson(reply));
  }

  private context(): CommandContext {
    const f = this.facts;
    return {
      virsh: this.virsh,
      domain: this.target.domain,
      name: f.name,
      uuid: f.uuid,
      arch: f.config.arch,
      facts: { uri: f.uri, libvirtVersion: f.libvirtVersion, qemuVersion: f.qemuVersion, readiness: readinessWarnings(f.config) },
      gone: (err) => void this.shutdown(err),
    };
  }

  private emit(line: string): void {
    if (this.closedWith) return;
    for (const l of [...this.lineListeners]) l(line);
  }

  private startStreams(): void {
    const domain = this.target.domain;
    const qemu = new VirshStream(this.virsh, ['qemu-monitor-event', domain, '--loop'], (line) => this.onStreamLine(line, 'qemu'));
    const libvirt = new VirshStream(this.virsh, ['event', domain, '--all', '--loop'], (line) => this.onStreamLine(line, 'libvirt'));
    for (const s of [qemu, libvirt]) {
      this.streams.push(s);
      const started: VirshExchange = { at: new Date().toISOString(), dir: 'tx', line: `${s.command} &` };
      this.pending.push(started);
      this.record?.(started);
      void s.ended.then((end) => {
        if (end.byUs) return;
        // virsh's own error (no domain, no daemon, no permission) says more than "the stream ended".
        const classified = end.stderr.trim() !== '' ? virshFailure(s.command, { stderr: end.stderr, code: end.code ?? 1 }, this.target.uri) : undefined;
        const err = classified && classified.kind !== 'failed' ? classified : new LibvirtError(`libvirt event stream ended: ${end.reason}`, 'unreachable', end.reason);
        void this.shutdown(err);
      });
    }
  }

  private onStreamLine(line: string, kind: 'qemu' | 'libvirt'): void {
    this.record?.({ at: new Date().toISOString(), dir: 'rx', line });
    if (kind === 'qemu') {
      const e = parseQemuEventLine(line);
      if (!e || !this.isOurs(e.domain)) return;
      const msg: Record<string, unknown> = { event: e.event, timestamp: { seconds: e.seconds, microseconds: e.microseconds } };
      if (e.data !== undefined) msg.data = e.data;
      msg.virsh = line;
      this.emit(stringifyJson(msg));
      return;
    }
    const e = parseDomainEventLine(line);
    if (!e || !this.isOurs(e.domain)) return;
    const now = Date.now();
    const data = e.kind === 'lifecycle' ? splitLifecycle(e.detail) : { detail: e.detail };
    const name = `LIBVIRT_${e.kind.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
    this.emit(stringifyJson({ event: name, data, timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 }, virsh: line }));
    if (e.kind === 'lifecycle' && splitLifecycle(e.detail).event === 'Stopped') {
      void this.shutdown(new LibvirtError(`libvirt domain ${this.target.domain} stopped (${e.detail})`, 'not-running', e.detail));
    }
  }

  /** virsh prints the domain's name in events, whether the user named it by name, UUID or id. */
  private isOurs(domain: string): boolean {
    return domain === this.target.domain || domain === this.factsValue?.name;
  }

  private async shutdown(err: Error | undefined): Promise<void> {
    if (this.closedWith) return;
    this.closedWith = { err };
    await Promise.all(this.streams.map((s) => s.close()));
    for (const l of [...this.closeListeners]) {
      try {
        l(err);
      } catch {
        // one failing listener must not keep the others from hearing
      }
    }
  }
}
