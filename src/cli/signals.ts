/**
 * Ctrl-C / SIGTERM turned into an AbortSignal, for commands that must clean up (remove a partial
 * output, restore a guest) instead of dying mid-write. While installed, the signals no longer kill
 * the process: the command has to watch `signal` and stop itself; dispose() restores the default.
 */
export function abortOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => controller.abort(name);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    },
  };
}
