/**
 * The manifest's record of everything vmpm did to the guest (state changes and heavy operations), in
 * order, with the time it was sent, how long it took and whether it worked.
 */
import type { CaptureAction } from '../bundle/schema';
import { describeError } from '../util/errors';
import { roundMs } from '../util/time';

export class ActionLog {
  readonly actions: CaptureAction[];
  /** Actions sent and not yet answered. */
  readonly pending = new Set<CaptureAction>();
  /** Called when an action is recorded (before it is sent) and when it ends: the claim file follows it (claim.ts). */
  onChange: (() => void) | undefined;

  constructor(prior: CaptureAction[] = []) {
    this.actions = [...prior];
  }

  /** Runs `fn`, recording it as `action`; rethrows its error after recording it. */
  async run<T>(action: string, detail: string | undefined, fn: () => Promise<T>): Promise<T> {
    const at = new Date();
    const t0 = performance.now();
    const entry: CaptureAction = { at: at.toISOString(), action, durationMs: 0, result: 'ok' };
    if (detail !== undefined) entry.detail = detail;
    this.actions.push(entry);
    this.pending.add(entry);
    this.onChange?.();
    try {
      const value = await fn();
      entry.durationMs = roundMs(performance.now() - t0);
      return value;
    } catch (err) {
      entry.durationMs = roundMs(performance.now() - t0);
      entry.result = 'error';
      entry.error = describeError(err);
      throw err;
    } finally {
      this.pending.delete(entry);
      this.onChange?.();
    }
  }
}

