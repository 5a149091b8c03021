/** A QMP event timestamp: QEMU's host wall clock when it emitted the event. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/**
 * QEMU's event timestamp as ISO-8601 UTC with microseconds, e.g. 2026-11-29T13:53:50.123456Z, or
 * undefined when it is not a real time (the QMP client stores -1/-1 for an event that had none).
 */
export function isoFromQmpTimestamp(ts: QmpTimestamp): string | undefined {
  const { seconds, microseconds } = ts;
  if (!Number.isSafeInteger(seconds) || seconds < 0 || !Number.isInteger(microseconds) || microseconds < 0 || microseconds > 999999) {
    return undefined;
  }
  const date = new Date(seconds * 1000 + Math.floor(microseconds / 1000));
  if (Number.isNaN(date.getTime())) return undefined;
  return date.toISOString().replace(/\.\d{3}Z$/, `.${String(microseconds).padStart(6, '0')}Z`);
}

/** A duration in milliseconds rounded to the microsecond, for timings in manifests and notifications. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The longest delay Node's timers take (2^31-1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A timer delay Node will honour: at most MAX_TIMER_MS. Beyond it Node prints TimeoutOverflowWarning
 * and fires at once, so a timeout scaled from a (possibly hostile) size would fail an operation at
 * once instead of waiting; clamped, it waits the longest a timer can.
 */
export function timerMs(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}
