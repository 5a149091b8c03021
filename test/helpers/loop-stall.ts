/**
 * For tests of bounds that must not fire on vmpm's own event-loop stalls (src/util/io-deadline.ts):
 * block the loop on purpose, starting from the check phase so that the next loop iteration begins
 * with the timers, before any pending I/O is polled.
 */

/** Blocks the event loop (sleeping, not spinning: the machine is shared). */
export function blockLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Resolves in the check phase (a setImmediate callback's microtasks): the next iteration starts with the timers. */
export function checkPhase(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
