import { constants } from 'node:os';

/** The signals a user or a supervisor sends to stop a command: Ctrl-C, kill, and a closed terminal. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Ctrl-C / SIGTERM / SIGHUP turned into an AbortSignal, for commands that must clean up (remove a
 * partial output, restore a guest) instead of dying mid-write. While installed, the signals no longer
 * kill the process: the command has to watch `signal` and stop itself; dispose() restores the default.
 * The abort reason is the signal's name.
 */
export function abortOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => controller.abort(name);
  for (const s of STOP_SIGNALS) process.once(s, onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of STOP_SIGNALS) process.removeListener(s, onSignal);
    },
  };
}

/** The shell's convention for "stopped by signal N": 128 + N (SIGINT 130, SIGTERM 143, SIGHUP 129). */
export function exitCodeForSignal(name: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[name];
  return n === undefined ? 1 : 128 + n;
}
