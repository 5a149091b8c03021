/**
 * A bound on waiting for I/O that an event-loop stall cannot trip.
 *
 * Node runs expired timers before it polls for I/O. When vmpm's own loop was blocked past a bound (a
 * long synchronous step, a starved process on a loaded host), a plain setTimeout fires first even
 * though the reply, event or data it waited for is already in the kernel: the wait fails for a peer
 * that answered in time. An IoDeadline yields once more when its timer fires (setImmediate runs
 * after the poll phase, which delivers what arrived) and only then calls `onExpired`. Whoever
 * receives in time cancels it.
 */
import { timerMs } from './time';

export interface IoDeadline {
  /** Stops the deadline; `onExpired` will not run. Safe to call any number of times. */
  cancel(): void;
}

export function ioDeadline(ms: number, onExpired: () => void): IoDeadline {
  let immediate: NodeJS.Immediate | undefined;
  let cancelled = false;
  const timer = setTimeout(() => {
    immediate = setImmediate(() => {
      if (!cancelled) onExpired();
    });
  }, timerMs(ms));
  return {
    cancel() {
      cancelled = true;
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}
