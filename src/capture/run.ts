/**
 * What one capture carries from phase to phase: the options, the QMP session, the action log, the
 * warnings, the timings, the phase it is in (for the failure message) and the private FIFO directory,
 * created on first use and removed in exactly one place (`dispose`).
 */
import type { CaptureAction, ErrorRecord, JournalEvent, MemoryMethod, QuiescePolicy, RunState } from '../bundle/schema';
import type { QmpClient, QmpEvent } from '../qmp';
import { VmpmError } from '../util/errors';
import { roundMs } from '../util/time';
import { ActionLog } from './actions';
import { Claim, outstandingChanges } from './claim';
import { createFifoDir, type FifoDir } from './fifo';
import { vmpmStoppedIt } from './policy';
import type { RequestedMemoryMethod } from './snapshot-choice';

export interface CaptureOptions {
  output: string;
  overwrite?: boolean;
  quiesce: QuiescePolicy;
  /** 'auto': a background snapshot for a running guest under stop-and-restore when QEMU can, else dump. */
  memory: RequestedMemoryMethod;
  attachments?: Array<{ name: string; path: string }>;
  label?: string;
  /** On failure keep what was written as `<output>.partial.vmpm` (clearly not a complete bundle). */
  keepPartial?: boolean;
  origin?: 'capture' | 'watch';
  trigger?: ErrorRecord;
  journal?: JournalEvent[];
  journalDropped?: number;
  /** State changes already made by the caller (e.g. the `stop` watch sent the moment an event came). */
  priorActions?: CaptureAction[];
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; done?: number; total?: number }) => void;
  /** The guest's UUID when the caller already knows it (watch): recorded in the claim from its first write. */
  guestUuid?: string | null;
  /** Bound on QEMU opening a memory FIFO (default 10 s). */
  fifoOpenTimeoutMs?: number;
  /** Bound on QEMU's silence while it streams memory into a FIFO (default 60 s). */
  fifoIdleTimeoutMs?: number;
  /**
   * Bound on QEMU's background-snapshot setup, while query-migrate reports `setup` and the stream is
   * silent (it does not count against fifoIdleTimeoutMs). Default: 2 minutes per GiB of RAM, at least 10.
   */
  snapshotSetupTimeoutMs?: number;
  /** zstd level for memory frames (default: the bundle writer's DEFAULT_LEVEL, 1). */
  level?: number;
  /**
   * Set when the QMP socket belongs to a QEMU that libvirt runs (the evidence, from src/libvirt):
   * `dump` then becomes `pmemsave`, because QEMU's dump-guest-memory behind libvirt's back crashed
   * libvirtd 9.0 (issue 15). The session's guard refuses the command as well.
   */
  libvirtOwned?: string;
}

export class CaptureRun {
  readonly t0 = performance.now();
  readonly createdAt = new Date().toISOString();
  readonly timings: Record<string, number> = {};
  readonly warnings: string[] = [];
  readonly actions: ActionLog;
  /** The phase a failure is reported in. */
  currentPhase = 'start';
  /** performance.now() when vmpm's own `stop` took effect in this capture. */
  stopAt: number | undefined;
  /** The run state vmpm found, once known (a failure's partial manifest reports it). */
  before: RunState | undefined;
  /** The memory method: the request until the survey has chosen. */
  method: MemoryMethod;
  private fifo: Promise<FifoDir> | undefined;
  /**
   * Set when vmpm sent a background snapshot's `migrate` to the running guest without a `stop` of its
   * own (x86: registers from the stream): QEMU's STOP is then vmpm's doing, and a guest left paused
   * by it after a failure is vmpm's to resume.
   */
  private snapshotUnstopped = false;
  /** QEMU's times (ms) of the STOP vmpm's `stop` (or `migrate`) caused and of the first RESUME after it. */
  private stopEventMs: number | undefined;
  private resumeEventMs: number | undefined;
  private stopSent = false;
  private readonly unsubscribe: () => void;
  private readonly claim: Claim;

  constructor(
    readonly client: QmpClient,
    readonly options: CaptureOptions,
  ) {
    this.actions = new ActionLog(options.priorActions ?? []);
    this.method = options.memory === 'auto' ? 'dump' : options.memory;
    // While vmpm holds the guest stopped (or migration settings changed) a claim file says so (claim.ts):
    // written before each change is sent, so a kill -9 at any point leaves it for the next vmpm to report.
    this.claim = new Claim({ origin: options.origin ?? 'capture', policy: options.quiesce, endpoint: client.endpoint, instance: client.instance, output: options.output }, this.warnings);
    this.claim.identify(options.guestUuid);
    this.actions.onChange = () => this.claim.sync(outstandingChanges(this.actions.actions, this.actions.pending));
    this.actions.onChange(); // watch's stop came before the capture
    this.unsubscribe = client.onEvent((e) => this.watchRunState(e));
  }

  /** The guest's UUID, read by the survey before any change: the claim names the guest by it as well as by endpoint. */
  identify(uuid: string | null): void {
    this.claim.identify(uuid);
  }

  /** Called as vmpm sends `stop`: the next STOP event is its effect. */
  stopSending(): void {
    this.stopSent = true;
  }

  /** Called as vmpm sends a background snapshot's `migrate` instead of a `stop`: QEMU stops the guest itself. */
  migrateSending(): void {
    this.stopSent = true;
    this.snapshotUnstopped = true;
  }

  private watchRunState(e: QmpEvent): void {
    if (!this.stopSent || e.timestamp.seconds < 0) return;
    const ms = e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
    if (e.event === 'STOP') this.stopEventMs ??= ms;
    else if (e.event === 'RESUME' && this.stopEventMs !== undefined) this.resumeEventMs ??= ms;
  }

  /**
   * How long the guest vmpm stopped stayed paused: from QEMU's STOP event to its RESUME event (QEMU's
   * own clock, so neither vmpm's round trips nor its event loop add to it), or, when QEMU did not
   * report both, from vmpm's stop reply to `resumedAt` (the `cont` reply).
   */
  pausedMs(resumedAt: number | undefined): number | undefined {
    if (this.stopEventMs !== undefined && this.resumeEventMs !== undefined) return roundMs(this.resumeEventMs - this.stopEventMs);
    if (resumedAt !== undefined && this.stopAt !== undefined) return roundMs(resumedAt - this.stopAt);
    return undefined;
  }

  get policy(): QuiescePolicy {
    return this.options.quiesce;
  }

  /** vmpm stopped the guest: here (by `stop`, or by `migrate` once QEMU stopped it), or the caller (watch's immediate `stop`) before. */
  get vmpmStopped(): boolean {
    if (this.snapshotUnstopped && this.stopEventMs !== undefined) return true;
    return this.stopAt !== undefined || vmpmStoppedIt(this.options.priorActions ?? []);
  }

  /** Enters a phase (reported to onProgress, and named by a failure). */
  phase(name: string, done?: number, total?: number): void {
    this.currentPhase = name;
    const p: { phase: string; done?: number; total?: number } = { phase: name };
    if (done !== undefined) p.done = done;
    if (total !== undefined) p.total = total;
    this.options.onProgress?.(p);
  }

  /** Runs one phase: enters it and, when `timing` is given, records how long it took under that name. */
  async step<T>(name: string, timing: string | undefined, fn: () => Promise<T>): Promise<T> {
    this.phase(name);
    const since = performance.now();
    const value = await fn();
    if (timing !== undefined) this.timings[timing] = roundMs(performance.now() - since);
    return value;
  }

  checkAbort(): void {
    if (this.options.signal?.aborted) throw new VmpmError('capture interrupted');
  }

  /** The private 0700 directory for FIFOs and the migration socket, made once. */
  fifoDir(): Promise<FifoDir> {
    this.fifo ??= createFifoDir();
    return this.fifo;
  }

  /** Removes the FIFO directory if one was made; never throws. The only place it is removed. */
  async dispose(): Promise<void> {
    this.unsubscribe();
    this.actions.onChange = undefined;
    // Ending alive: a stop the policy keeps is not a leftover; one vmpm could not undo stays claimed
    // (the next vmpm reports it once this process is gone).
    this.claim.sync(outstandingChanges(this.actions.actions, this.actions.pending).filter((c) => c.what !== 'stopped' || this.policy !== 'keep-stopped'));
    const dir = await this.fifo?.catch(() => undefined);
    await dir?.remove().catch(() => undefined);
  }
}
