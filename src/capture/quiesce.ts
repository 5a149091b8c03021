/**
 * The run-state changes a capture makes: the one `stop` (followed at once by the register read, the
 * only query that must happen inside the stop), and the one restore, used by the success and the
 * failure path alike.
 */
import type { CpusSection, QuiescePolicy, RunState } from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { describeError } from '../util/errors';
import type { ActionLog } from './actions';
import { queryStatus, readRegisters, type CpuFast } from './metadata';
import { decideResume, shouldStop } from './policy';
import type { CaptureRun } from './run';

/**
 * Stops the guest when the policy says so, reads every vCPU's registers and starts `next` (a
 * snapshot's `migrate`), all sent back to back and their replies awaited after: QEMU runs one
 * session's commands in order, so the registers are read inside the stop, of the instant the memory
 * is taken from, and no round trip of vmpm's lies inside the pause. Any of them failing fails the
 * capture (the failure path ends a started snapshot and restores the run state).
 */
export async function stopAndReadRegisters(
  run: CaptureRun,
  before: RunState,
  arch: string,
  fast: CpuFast[],
  next?: () => Promise<unknown>,
): Promise<CpusSection> {
  const { client, policy } = run;
  let stopped: Promise<unknown> = Promise.resolve();
  if (shouldStop(policy, before)) {
    run.stopSending();
    stopped = run.actions.run('stop', `guest was ${before.status}; policy ${policy}`, () => client.execute('stop')).then(() => {
      run.stopAt = performance.now();
    });
  }
  const registers = readRegisters(client, arch, fast, run.warnings);
  const started = next?.() ?? Promise.resolve();
  // All settled before any is rethrown: no rejection is left unobserved.
  const [s, r, n] = await Promise.allSettled([stopped, registers, started]);
  for (const x of [s, r, n]) if (x.status === 'rejected') throw x.reason;
  return (r as PromiseFulfilledResult<CpusSection>).value;
}

/**
 * An x86 background snapshot of a guest vmpm found running: no `stop` and no `info registers`, only
 * `migrate`. QEMU finishes its setup while the guest runs, then stops it, saves the vCPU state into
 * the stream (cpusFromStream reads it), starts write-tracking and resumes it: the pause is QEMU's
 * STOP to RESUME, milliseconds whatever the RAM size.
 */
export async function startSnapshotWithoutStop(run: CaptureRun, migrate: () => Promise<unknown>): Promise<void> {
  run.migrateSending();
  await migrate();
}

export interface Restored {
  /** The status before any `cont`. */
  now: RunState;
  /** performance.now() right after a successful `cont`. */
  resumedAt?: number;
  /** Why a guest that should have been resumed was not. */
  notResumed?: string;
}

/**
 * The one run-state restore, for the success and the failure path: a guest vmpm stopped goes back to
 * running when the policy says so and it is still merely paused. A refused or failed `cont` leaves it
 * stopped (with a warning) and is returned as `notResumed`; it never fails the capture.
 */
export async function restoreRunState(
  client: QmpClient,
  policy: QuiescePolicy,
  stoppedByVmpm: boolean,
  actions: ActionLog,
  warnings: string[],
  why: string,
  timeoutMs?: number,
): Promise<Restored> {
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  const now = await queryStatus(client, opts);
  if (!decideResume(policy, stoppedByVmpm, now).resume) return { now };
  try {
    await actions.run('cont', why, () => client.execute('cont', undefined, opts));
    return { now, resumedAt: performance.now() };
  } catch (err) {
    warnings.push(`could not resume the guest vmpm stopped (${describeError(err)}); it is left stopped`);
    return { now, notResumed: `could not resume it: ${describeError(err)}` };
  }
}

/** After a failure: restores while QEMU still answers; returns why a guest vmpm stopped is still stopped. */
export async function restoreAfterFailure(run: CaptureRun): Promise<string | undefined> {
  const { client, policy, actions, warnings } = run;
  if (!run.vmpmStopped || policy !== 'stop-and-restore') return undefined;
  // The monitor went away, not necessarily QEMU: the guest vmpm stopped may well still be stopped.
  if (client.closed) return 'the QMP connection is gone, so vmpm could not resume it; `vmpm state` tells, `vmpm qmp ... cont --allow cont` resumes';
  try {
    const r = await restoreRunState(client, policy, true, actions, warnings, 'restoring the run state after a failed capture', 5000);
    return r.notResumed;
  } catch (err) {
    warnings.push(`could not restore the run state: ${describeError(err)}`);
    return `could not resume it: ${describeError(err)}`;
  }
}
