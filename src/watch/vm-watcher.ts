/**
 * Watches one QEMU monitor for as long as the watcher runs: connects (retrying with capped
 * exponential backoff while the socket is missing or QEMU restarts), journals every event, grades it
 * with the policy, and on a serious one sends `stop` before doing anything else, then hands the
 * incident to incident.ts. One incident (and so one capture) at a time per VM.
 */
import type { MemoryMethod } from '../bundle/schema';
import { errorRecordsFromStatus } from '../capture/errors';
import { reportStaleClaims } from '../capture/claim-report';
import { connectQmpGuarded } from '../libvirt';
import { pausingEventOf, statusAfterEvent, type ConnectOptions, type QmpClient, type QmpEvent } from '../qmp';
import { describeError } from '../util/errors';
import { Backoff, sleep, type BackoffOptions } from './backoff';
import { qemuPausedOnEvent } from './event-effects';
import { queryIdentity, vmLabel, type VmIdentity } from './identity';
import { Incident, sendStop } from './incident';
import { RollingJournal, type JournalLimits } from './journal';
import type { LogLevel, WatchLogger } from './log';
import type { IncidentNotification } from './notify';
import { evaluate, type Policy } from './policy';
import { checkFailoverState, recordResume } from './state';

export interface VmWatcherOptions {
  outDir: string;
  policy: Policy;
  memory: MemoryMethod;
  log: WatchLogger;
  /** Called once per incident with its notification (the supervisor prints it and runs the hook). */
  onIncident: (n: IncidentNotification) => Promise<void>;
  /** Called once a resume of a captured VM is recorded beside its bundle (retention may now let that bundle go). */
  onResumeRecorded?: () => void;
  journal?: JournalLimits;
  settleMs?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** On connect, capture a VM found already panicked / in io-error with no bundle for that stop (default true). */
  catchUp?: boolean;
  /**
   * Opens the session (a libvirt domain, src/libvirt). Default: the QMP socket at `endpoint`, guarded
   * when libvirt runs the QEMU behind it (no dump-guest-memory; captures use pmemsave).
   */
  connect?: (options: ConnectOptions) => Promise<{ client: QmpClient; libvirtOwned?: string }>;
}

/** A session shorter than this (or whose start-up failed) counts as failed: the next reconnect waits a backoff step. */
const HEALTHY_SESSION_MS = 5_000;

export class VmWatcher {
  private readonly journal: RollingJournal;
  private identity: VmIdentity | undefined;
  /** The VM's run status as last known: query-status on connect, then kept up to date from events. */
  private runStatus: string | undefined;
  private incident: Incident | undefined;
  private inFlight: Promise<void> | undefined;
  private captureAbort = new AbortController();
  private readonly loopAbort = new AbortController();
  private client: QmpClient | undefined;
  /** The incident of a stop whose connection dropped, until the next connection says whether the VM is still in it. */
  private openStop: { incident: Incident; status: string; identity: VmIdentity } | undefined;
  /** Evidence that libvirt runs the QEMU behind a plain socket, from the current connection. */
  private libvirtOwned: string | undefined;
  /** Events graded serious, incidents opened: for tests and the exit log line. */
  readonly stats = { connects: 0, events: 0, incidents: 0 };

  constructor(
    readonly endpoint: string,
    private readonly options: VmWatcherOptions,
  ) {
    this.journal = new RollingJournal(options.journal);
  }

  /** The VM's identity when the watcher is connected to it and knows it is running now (retention may then let its newest bundle go). */
  runningNow(): VmIdentity | undefined {
    if (!this.client || this.client.closed || !this.identity || this.runStatus !== 'running') return undefined;
    return this.identity;
  }

  /** Runs until stop() is called. Never rejects. */
  async run(): Promise<void> {
    const backoff = new Backoff(this.options.backoff);
    const signal = this.loopAbort.signal;
    while (!signal.aborted) {
      let client: QmpClient;
      try {
        const connectOptions: ConnectOptions = {
          connectTimeoutMs: this.options.connectTimeoutMs ?? 5000,
          // A watcher's connection lives for days: keep the client's own buffers near the journal's size.
          maxBufferedEvents: this.options.journal?.maxEvents ?? 2000,
          maxTranscriptEntries: 20_000,
        };
        const opened = this.options.connect ? await this.options.connect(connectOptions) : await connectQmpGuarded(this.endpoint, connectOptions);
        client = opened.client;
        this.libvirtOwned = opened.libvirtOwned;
        if (opened.libvirtOwned !== undefined) this.log('warn', `QEMU is run by libvirt (${opened.libvirtOwned}): captures use pmemsave, never dump-guest-memory; --libvirt DOMAIN is the better way in`);
      } catch (err) {
        const delay = backoff.next();
        // Log the first failure and then every tenth, so a VM that is down for days does not flood the log.
        if (backoff.failures === 1 || backoff.failures % 10 === 0) {
          this.log('warn', `cannot connect (${describeError(err)}); retrying in ${delay} ms (attempt ${backoff.failures})`);
        }
        await sleep(delay, signal);
        continue;
      }
      if (signal.aborted) {
        // stop() came while we were connecting: it could not close this client, so do it here.
        await client.close().catch(() => undefined);
        break;
      }
      const startedAt = performance.now();
      const started = await this.session(client);
      if (signal.aborted) break;
      // Backoff applies to every failed session, not only failed connects: a monitor that greets and
      // then drops the next command would otherwise be reconnected to thousands of times a second.
      if (started && performance.now() - startedAt >= HEALTHY_SESSION_MS) {
        backoff.reset();
        continue;
      }
      const delay = backoff.next();
      if (backoff.failures === 1 || backoff.failures % 10 === 0) {
        this.log('warn', `session ended after ${Math.round(performance.now() - startedAt)} ms; reconnecting in ${delay} ms (attempt ${backoff.failures})`);
      }
      await sleep(delay, signal);
    }
  }

  /**
   * Stops watching. A capture in flight gets `graceMs` to finish; after that it is aborted (capture
   * removes its partial file) and its incident is reported as abandoned.
   */
  async stop(graceMs: number): Promise<void> {
    this.loopAbort.abort();
    if (this.inFlight) {
      this.log('info', `waiting up to ${graceMs} ms for the capture in flight`);
      const timer = setTimeout(() => {
        this.log('warn', 'capture did not finish in time: abandoning it');
        this.captureAbort.abort();
      }, graceMs);
      await this.inFlight;
      clearTimeout(timer);
    }
    await this.client?.close().catch(() => undefined);
  }

  /** One connection, until it closes or stop(); true when its start-up queries succeeded. */
  private async session(client: QmpClient): Promise<boolean> {
    this.client = client;
    this.stats.connects += 1;
    const closed = new Promise<void>((resolve) => client.onClose(() => resolve()));
    const stopped = new Promise<void>((resolve) => this.loopAbort.signal.addEventListener('abort', () => resolve(), { once: true }));
    const unsubscribe = client.onEvent((e) => this.onEvent(client, e), { replay: true });
    let started = false;
    try {
      this.identity = await queryIdentity(client);
      const status = await client.execute<{ status: string; running: boolean }>('query-status');
      this.resumeOpenStop(status.status);
      this.runStatus ??= status.status;
      started = true;
      const v = client.greeting.version.qemu;
      this.log('info', `connected to QEMU ${v.major}.${v.minor}.${v.micro} (${this.endpoint}); run state ${status.status}`);
      // A vmpm killed while it held this guest stopped left a claim: the log says so and how to undo it.
      await reportStaleClaims(client, (line) => this.log('warn', line), { note: (line) => this.log('info', line) });
      if (this.options.catchUp !== false) await this.catchUp(client, status);
    } catch (err) {
      if (!client.closed) this.log('warn', `start-up queries failed: ${describeError(err)}`);
    }
    await Promise.race([closed, stopped]);
    unsubscribe();
    if (this.loopAbort.signal.aborted) return started;
    this.log('warn', 'monitor connection closed (QEMU exited or restarted, or the monitor dropped us); reconnecting');
    await this.inFlight;
    // A stop with an incident is remembered: if the next connection finds the same VM still in the same
    // stopped state, it is the same stop (one stop, one incident), not a new one per reconnect.
    this.openStop =
      this.incident && this.runStatus !== undefined && this.runStatus !== 'running' && this.identity
        ? { incident: this.incident, status: this.runStatus, identity: this.identity }
        : undefined;
    // Otherwise a new connection may be a new QEMU process: nothing of the old run state or incident carries over.
    this.incident = undefined;
    this.runStatus = undefined;
    this.client = undefined;
    return started;
  }

  /** After a reconnect: the VM still stopped as it was under an incident is that incident's stop. */
  private resumeOpenStop(status: string): void {
    const open = this.openStop;
    this.openStop = undefined;
    if (!open || !this.identity) return;
    if (status !== open.status || this.identity.uuid !== open.identity.uuid || this.identity.name !== open.identity.name) return;
    this.incident = open.incident;
    this.runStatus = status;
    this.log('info', `VM still ${status}: the same stop as the incident of ${open.incident.triggerEvent.event}, not a new incident`);
  }

  /** The hot path: grade, and for a serious event send `stop` before anything else is done. */
  private onEvent(client: QmpClient, e: QmpEvent): void {
    const arrivedAt = performance.now();
    const verdict = evaluate(this.options.policy, e, this.runStatus);
    const serious = verdict.grade === 'serious';
    const alreadyPaused = qemuPausedOnEvent(e) || (this.runStatus !== undefined && this.runStatus !== 'running');
    const stop = serious && !this.incident && !alreadyPaused ? sendStop(client, e.event) : undefined;

    this.stats.events += 1;
    this.journal.add(e);
    this.trackRunState(e);
    if (serious) this.onSerious(client, e, arrivedAt, stop, verdict.rule?.origin ?? '');
    else if (verdict.grade === 'notable') this.log('info', `event ${e.event} ${JSON.stringify(e.data ?? {})} (notable: ${verdict.rule?.origin})`);
    if (e.event === 'RESUME' && this.incident?.done) {
      const bundle = this.incident.bundle;
      this.log('info', `VM resumed: incident of ${this.incident.triggerEvent.event} closed${bundle ? `; ${bundle} no longer describes the live VM` : ''}`);
      this.incident = undefined;
      if (bundle) {
        recordResume(bundle, e).then(
          () => {
            this.log('info', `resume recorded next to ${bundle}`);
            this.options.onResumeRecorded?.();
          },
          (err: unknown) => this.log('warn', `could not record the resume next to ${bundle}: ${describeError(err)}`),
        );
      }
    }
  }

  private trackRunState(e: QmpEvent): void {
    this.runStatus = statusAfterEvent(this.runStatus, e);
  }

  private onSerious(client: QmpClient, e: QmpEvent, arrivedAt: number, stop: ReturnType<typeof sendStop> | undefined, rule: string): void {
    if (this.incident) {
      this.incident.events.push(e);
      const where = this.incident.done ? `already captured${this.incident.bundle ? ` in ${this.incident.bundle}` : ''}` : 'capture in progress';
      this.log('info', `serious ${e.event} joins the open incident of ${this.incident.triggerEvent.event} (${where})`);
      return;
    }
    this.log('info', `serious event ${e.event} ${JSON.stringify(e.data ?? {})} (${rule})`);
    this.startIncident(client, new Incident(e, arrivedAt, stop));
  }

  private startIncident(client: QmpClient, incident: Incident): void {
    this.incident = incident;
    this.stats.incidents += 1;
    this.captureAbort = new AbortController();
    const run = incident
      .run({
        client,
        endpoint: this.endpoint,
        identity: this.identity,
        outDir: this.options.outDir,
        memory: this.options.memory,
        journal: this.journal,
        settleMs: this.options.settleMs ?? 100,
        signal: this.captureAbort.signal,
        log: (m) => this.log('info', m),
        ...(this.libvirtOwned !== undefined ? { libvirtOwned: this.libvirtOwned } : {}),
      })
      .then(async (n) => {
        if (n.error) this.log('error', n.error);
        await this.options.onIncident(n);
      })
      .catch((err: unknown) => this.log('error', `incident handling failed: ${describeError(err)}`))
      .finally(() => {
        if (this.inFlight === run) this.inFlight = undefined;
      });
    this.inFlight = run;
  }

  /**
   * A VM found stopped by QEMU on a serious error (the watcher started late, or restarted): capture it
   * unless the out-dir already holds a bundle of this very stop (the `vmpm state` rule).
   */
  private async catchUp(client: QmpClient, status: { status: string; running: boolean }): Promise<void> {
    // The event QEMU stopped it on (the run-state table's pausedBy), graded as if it had just arrived.
    const synthetic = pausingEventOf(status.status);
    if (!synthetic || this.incident) return;
    const now = new Date();
    const event: QmpEvent = {
      ...synthetic,
      timestamp: { seconds: Math.floor(now.getTime() / 1000), microseconds: (now.getTime() % 1000) * 1000 },
      receivedAt: now,
    };
    if (evaluate(this.options.policy, event, status.status).grade !== 'serious') return;
    const state = await checkFailoverState(client, { outDir: this.options.outDir, verify: false });
    if (state.failoverSafe || this.incident) {
      if (state.failoverSafe) this.log('info', `found VM ${status.status}; already captured in ${state.bundle?.path}`);
      return;
    }
    this.log('info', `found VM already ${status.status} with no bundle of this stop: capturing it now`);
    const record = errorRecordsFromStatus(status, now.toISOString())[0];
    this.startIncident(client, new Incident(event, performance.now(), undefined, record));
  }

  private log(level: LogLevel, message: string): void {
    this.options.log.log(level, vmLabel(this.endpoint, this.identity), message);
  }
}
