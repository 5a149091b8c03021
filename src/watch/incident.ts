/**
 * One incident: a serious event, the `stop` sent for it (or QEMU's own pause), the capture, and the
 * notification. Later serious events of the same VM join the open incident instead of starting a new
 * capture; the incident stays open (de-duplicating) until the VM is resumed or the connection ends.
 */
import { capture } from '../capture';
import { CaptureError } from '../capture/capture-error';
import { errorRecordFromEvent } from '../capture/errors';
import type { CaptureAction, ErrorRecord, JournalEvent, MemoryMethod } from '../bundle/schema';
import type { QmpClient, QmpEvent } from '../qmp';
import { panicLineOf } from '../analysis/guest-kernel';
import { describeError } from '../util/errors';
import { roundMs } from '../util/time';
import { sleep } from './backoff';
import { destructiveEffect, evidenceLost } from './event-effects';
import { incidentBundlePath, type VmIdentity } from './identity';
import { qemuTime, type RollingJournal } from './journal';
import type { IncidentNotification } from './notify';

/** How long the notification may wait for the guest kernel's panic line (a RAM scan of a big guest without VMCOREINFO is skipped). */
const PANIC_LOOKUP_MS = 3000;

export interface StopOutcome {
  ok: boolean;
  /** performance.now() when the reply (or the failure) arrived. */
  repliedAt: number;
  action: CaptureAction;
  error?: string;
}

/** Sends `stop` and records it as a CaptureAction. The hot path: nothing before the write. */
export function sendStop(client: QmpClient, reason: string): Promise<StopOutcome> {
  const sentAt = performance.now();
  const at = new Date().toISOString();
  const done = (error?: string): StopOutcome => {
    const repliedAt = performance.now();
    const action: CaptureAction = {
      at,
      action: 'stop',
      detail: `vmpm watch: quiesce on ${reason}`,
      durationMs: repliedAt - sentAt,
      result: error === undefined ? 'ok' : 'error',
      ...(error === undefined ? {} : { error }),
    };
    return { ok: error === undefined, repliedAt, action, ...(error === undefined ? {} : { error }) };
  };
  return client.execute('stop').then(
    () => done(),
    (err: unknown) => done(describeError(err)),
  );
}

export interface IncidentContext {
  client: QmpClient;
  endpoint: string;
  identity: VmIdentity | undefined;
  outDir: string;
  memory: MemoryMethod;
  journal: RollingJournal;
  /** Wait after the stop reply so a storm's events are all in the journal the bundle keeps. */
  settleMs: number;
  /** Aborted when the watcher gives up on the capture (SIGTERM grace expired). */
  signal: AbortSignal;
  log: (message: string) => void;
  /** Set when a plain QMP socket leads to a QEMU that libvirt runs (capture then uses pmemsave). */
  libvirtOwned?: string;
}

export class Incident {
  /** Journal events of the LEAD_UP_MS before the trigger, oldest first (set when the incident runs). */
  private leadUp: Array<{ event: string; time: string }> = [];
  readonly events: QmpEvent[];
  readonly trigger: ErrorRecord;
  bundle: string | null = null;
  done = false;

  constructor(
    readonly triggerEvent: QmpEvent,
    /** performance.now() when the trigger reached the watcher. */
    readonly arrivedAt: number,
    /** The stop the watcher sent, or undefined when QEMU had already paused the VM. */
    readonly stop: Promise<StopOutcome> | undefined,
    /**
     * Overrides the record derived from the event. Catch-up incidents pass the run-state record: their
     * `triggerEvent` is only the event the run state is graded as, never received, so it is not listed
     * among the incident's events and its made-up data is not reported.
     */
    trigger?: ErrorRecord,
  ) {
    this.fromRunState = trigger?.source === 'run-state';
    this.events = this.fromRunState ? [] : [triggerEvent];
    this.trigger = trigger ?? recordFor(triggerEvent);
  }

  /** True for a catch-up: the VM was found stopped in a serious run state, no event was seen. */
  readonly fromRunState: boolean;

  /** Stops (already under way), captures and builds the notification. Never throws. */
  async run(ctx: IncidentContext): Promise<IncidentNotification> {
    this.leadUp = leadUpEvents(ctx.journal.snapshot(), this.triggerEvent);
    const n = this.baseNotification(ctx);
    const effect = destructiveEffect(this.triggerEvent);
    if (effect) n.lost.push(...evidenceLost(effect));
    let priorActions: CaptureAction[] = [];
    if (this.stop) {
      const outcome = await this.stop;
      n.stoppedBy = outcome.ok ? 'vmpm' : 'none';
      n.stopMs = roundMs(outcome.repliedAt - this.arrivedAt);
      priorActions = [outcome.action];
      ctx.log(outcome.ok ? `stop on ${this.triggerEvent.event}: reply ${n.stopMs} ms after the event` : `stop on ${this.triggerEvent.event} failed: ${outcome.error}`);
      if (!outcome.ok) return this.finish(n, `could not stop the VM: ${outcome.error}`);
    } else {
      ctx.log(`${this.triggerEvent.event}: QEMU had already paused the VM, no stop needed`);
    }
    if (effect === 'exit') return this.finish(n, `QEMU exits on ${this.trigger.summary}; nothing could be captured`);

    await sleep(ctx.settleMs, ctx.signal);
    const output = incidentBundlePath(ctx.outDir, ctx.endpoint, ctx.identity, this.triggerEvent.event, this.triggerEvent.receivedAt);
    ctx.log(`capturing into ${output}`);
    try {
      const result = await capture(ctx.client, {
        output,
        quiesce: 'keep-stopped',
        memory: ctx.memory,
        origin: 'watch',
        trigger: this.trigger,
        journal: ctx.journal.snapshot(),
        journalDropped: ctx.journal.dropped,
        priorActions,
        guestUuid: ctx.identity?.uuid ?? null,
        signal: ctx.signal,
        label: `vmpm watch: ${this.trigger.summary}`,
        ...(ctx.libvirtOwned !== undefined ? { libvirtOwned: ctx.libvirtOwned } : {}),
      });
      this.bundle = result.path;
      n.bundle = result.path;
      n.sha256 = result.sha256;
      n.size = result.size;
      n.captureMs = roundMs(performance.now() - this.arrivedAt);
      const after = result.manifest.runState.after;
      if (after.running) n.lost.push(`the VM was running again after the capture (${after.status})`);
      n.failoverSafe = !after.running && effect === undefined;
      // What the guest kernel said it died of, read back from the bundle just written (bounded in time).
      n.panic = (await panicLineOf(result.path, PANIC_LOOKUP_MS)) ?? null;
      if (n.panic) ctx.log(`guest kernel: ${n.panic}`);
      ctx.log(`captured ${result.path} (${result.size} bytes) ${n.captureMs} ms after the event; failover-safe: ${n.failoverSafe}`);
      return this.finish(n);
    } catch (err) {
      return this.finish(n, await this.captureFailed(ctx, n, err));
    }
  }

  /**
   * A failed capture is an incident of its own: the notification says what kind of failure (a full
   * disk above all: the responder must free space, nothing else will fix it) and what state the guest
   * is in now, as QEMU reports it (watch keeps it stopped whatever happened: its policy is keep-stopped).
   */
  private async captureFailed(ctx: IncidentContext, n: IncidentNotification, err: unknown): Promise<string> {
    const kind = err instanceof CaptureError ? err.kind : 'other';
    n.captureFailure = kind;
    let held = '';
    if (!ctx.client.closed) {
      try {
        const s = await ctx.client.execute<{ status: string; running: boolean }>('query-status', undefined, { timeoutMs: 5000 });
        held = s.running ? `; the guest is running (${s.status})` : `; the guest is held stopped (${s.status}) per the watch policy (keep-stopped): resume it when the evidence is safe`;
      } catch {
        // The status is only a courtesy here: the capture's own error already says what it knows.
      }
    }
    if (kind === 'disk-full') {
      n.lost.push(`no bundle: the file system of ${ctx.outDir} is full`);
      return `capture failed: disk full: no space left in ${ctx.outDir} for the bundle (${err instanceof CaptureError ? err.detail : describeError(err)})${held}`;
    }
    return `capture failed: ${describeError(err)}${held}`;
  }

  private baseNotification(ctx: IncidentContext): IncidentNotification {
    const data = this.triggerEvent.data;
    return {
      type: 'incident',
      at: '',
      vm: { endpoint: ctx.endpoint, name: ctx.identity?.name ?? null, uuid: ctx.identity?.uuid ?? null },
      trigger: {
        event: this.triggerEvent.event,
        source: this.fromRunState ? 'run-state' : 'event',
        time: this.trigger.time,
        summary: this.trigger.summary,
        ...(data === undefined || this.fromRunState ? {} : { data }),
      },
      events: [],
      stoppedBy: 'qemu',
      stopMs: null,
      bundle: null,
      sha256: null,
      size: null,
      captureMs: null,
      failoverSafe: false,
      lost: [],
    };
  }

  private finish(n: IncidentNotification, error?: string): IncidentNotification {
    this.done = true;
    n.at = new Date().toISOString();
    // What led up to the trigger first (a MEMORY_FAILURE 60 ms before GUEST_PANICKED): HA reads this line first.
    n.events = [...this.leadUp, ...this.events.map((e) => ({ event: e.event, time: qemuTime(e.timestamp, e.receivedAt) }))];
    if (error !== undefined) {
      n.error = error;
      n.failoverSafe = false;
    }
    return n;
  }
}

/** The normalised record of the trigger; events capture does not know get a plain one. */
function recordFor(e: QmpEvent): ErrorRecord {
  const known = errorRecordFromEvent(e);
  if (known) return known;
  return {
    time: qemuTime(e.timestamp, e.receivedAt),
    source: 'event',
    kind: e.event.toLowerCase().replace(/_/g, '-'),
    severity: 'critical',
    summary: `${e.event} (graded serious by the watch policy)`,
    raw: { event: e.event, data: e.data, timestamp: e.timestamp },
  };
}


/** How far before the trigger the notification reaches back for the events that led up to it. */
export const LEAD_UP_MS = 10_000;
/** At most this many lead-up events in a notification (the bundle's journal keeps them all). */
const MAX_LEAD_UP = 50;

/** The journal's events within LEAD_UP_MS before `trigger` (by QEMU's timestamps), the trigger itself excluded. */
export function leadUpEvents(journal: JournalEvent[], trigger: QmpEvent): Array<{ event: string; time: string }> {
  const triggerTime = qemuTime(trigger.timestamp, trigger.receivedAt);
  const at = Date.parse(triggerTime);
  const out: Array<{ event: string; time: string }> = [];
  for (const e of journal) {
    const t = Date.parse(e.time);
    // ISO times with microseconds sort as strings: anything at or after the trigger is not lead-up.
    if (!Number.isFinite(t) || t < at - LEAD_UP_MS || e.time >= triggerTime) continue;
    out.push({ event: e.event, time: e.time });
  }
  return out.slice(-MAX_LEAD_UP);
}
