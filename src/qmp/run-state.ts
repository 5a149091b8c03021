/**
 * QEMU's run states (query-status `status`, qapi RunState) in one declarative table: how QEMU enters
 * each by itself (the error event and its `action`), what it means when a VM is found in it (the
 * severity and words of the run-state error record), which error records explain it, and why a VM is
 * in it (the words `vmpm state` shows). Watch, state and capture derive their rules from this table
 * instead of keeping their own.
 */
import type { Severity } from '../util/severity';

export interface RunStateRule {
  status: string;
  /** The event whose `action` makes QEMU enter this state by itself: the VM pauses without a `stop`. */
  pausedBy?: { event: string; action: string };
  /** Error-record kinds whose newest record explains being in this state. */
  explainedBy?: readonly string[];
  /** For states that mean trouble: the run-state error record's severity and text. */
  trouble?: { severity: Severity; text: string };
  /** Why a VM is in this state, in words (`vmpm state`'s reason). */
  reason: string;
}

export const RUN_STATES: readonly RunStateRule[] = [
  { status: 'running', reason: 'running' },
  { status: 'paused', reason: 'paused (a stop command, or a stop by a management tool)' },
  {
    status: 'guest-panicked',
    pausedBy: { event: 'GUEST_PANICKED', action: 'pause' },
    explainedBy: ['guest-panicked'],
    trouble: { severity: 'critical', text: 'the guest panicked' },
    reason: 'the guest panicked (GUEST_PANICKED, action pause)',
  },
  {
    status: 'io-error',
    pausedBy: { event: 'BLOCK_IO_ERROR', action: 'stop' },
    explainedBy: ['block-io-error'],
    trouble: { severity: 'error', text: 'the guest is paused on a block I/O error' },
    reason: 'a block device I/O error stopped it (BLOCK_IO_ERROR, action stop)',
  },
  {
    status: 'watchdog',
    pausedBy: { event: 'WATCHDOG', action: 'pause' },
    explainedBy: ['watchdog'],
    trouble: { severity: 'error', text: 'the guest was stopped by its watchdog' },
    reason: 'the guest watchdog expired (WATCHDOG, action pause)',
  },
  {
    status: 'internal-error',
    trouble: { severity: 'critical', text: 'QEMU stopped the guest after an internal (accelerator) error' },
    reason: 'QEMU hit an internal error (e.g. an emulation failure)',
  },
  {
    // Entered on SHUTDOWN only with -no-shutdown (QEMU exits otherwise), so it is no `pausedBy` rule.
    status: 'shutdown',
    explainedBy: ['shutdown'],
    trouble: { severity: 'warning', text: 'the guest has shut down (QEMU kept alive by -no-shutdown)' },
    reason: 'the guest shut down and QEMU runs with -no-shutdown',
  },
  { status: 'prelaunch', reason: 'not started yet (-S) or reset while stopped' },
  { status: 'save-vm', reason: 'a snapshot or dump is in progress' },
  { status: 'restore-vm', reason: 'a snapshot is being restored' },
  { status: 'inmigrate', reason: 'waiting for an incoming migration' },
  { status: 'postmigrate', reason: 'migrated away' },
  { status: 'suspended', reason: 'the guest suspended itself (S3)' },
  { status: 'debug', reason: 'stopped by a debugger' },
];

const BY_STATUS = new Map(RUN_STATES.map((r) => [r.status, r]));

export function runStateRule(status: string): RunStateRule | undefined {
  return BY_STATUS.get(status);
}

export interface EventLike {
  event: string;
  data?: unknown;
}

/** The event's `action` (what QEMU does about it), when it has one. */
export function eventAction(e: EventLike): string | undefined {
  const d = e.data;
  if (d === null || typeof d !== 'object') return undefined;
  const a = (d as Record<string, unknown>).action;
  return typeof a === 'string' ? a : undefined;
}

/** The state QEMU paused the VM in on this event by itself (GUEST_PANICKED action pause -> guest-panicked), if any. */
export function statePausedBy(e: EventLike): string | undefined {
  const action = eventAction(e);
  return RUN_STATES.find((r) => r.pausedBy?.event === e.event && r.pausedBy.action === action)?.status;
}

/**
 * The run status after `e`, from the status before it (undefined = unknown): RESUME runs the VM, STOP
 * pauses a running (or unknown) one, and an error event whose action pauses enters its state.
 * Otherwise the status is unchanged.
 */
export function statusAfterEvent(before: string | undefined, e: EventLike): string | undefined {
  if (e.event === 'RESUME') return 'running';
  if (e.event === 'STOP') return before === 'running' || before === undefined ? 'paused' : before;
  return statePausedBy(e) ?? before;
}

/** The event (with its pausing action) a VM found in `status` was stopped by, for grading a catch-up. */
export function pausingEventOf(status: string): { event: string; data: { action: string } } | undefined {
  const p = runStateRule(status)?.pausedBy;
  return p === undefined ? undefined : { event: p.event, data: { action: p.action } };
}
