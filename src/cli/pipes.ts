import { constants } from 'node:os';

/**
 * A reader that stops reading (`vmpm search ... | head -1`) is normal, not an error. Node ignores
 * SIGPIPE, so a write to a closed pipe fails with EPIPE instead: unhandled, that is an "Unhandled
 * 'error' event" stack trace, or "unexpected error: write EPIPE" from a command awaiting 'drain'.
 * Once installed, EPIPE on stdout ends the process quietly with 141 (128 + SIGPIPE), which is what
 * `cat` reports in the same place, unless a command asked to wind down instead (watch: stop
 * watching, finish or abandon a capture in flight cleanly). EIO on a stdout that is a terminal is the
 * same thing (the terminal hung up). Errors on stderr are ignored: there is nobody left to tell.
 */
export const EXIT_SIGPIPE = 128 + (constants.signals.SIGPIPE ?? 13);

let installed = false;
let onStdoutGone: (() => void) | undefined;

export function installPipeGuard(): void {
  if (installed) return;
  installed = true;
  // A terminal that hung up (closed, SIGHUP) fails writes with EIO: its reader went away too.
  const tty = process.stdout.isTTY === true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && !(err.code === 'EIO' && tty)) {
      // stdout redirected to a file on a full or failing disk: one line, not a stack trace.
      process.stderr.write(`vmpm: cannot write to standard output: ${err.code ?? err.message}\n`);
      process.exit(1);
    }
    if (onStdoutGone) {
      const fn = onStdoutGone;
      onStdoutGone = undefined;
      fn();
      return;
    }
    process.exit(EXIT_SIGPIPE);
  });
  process.stderr.on('error', () => undefined);
}

/**
 * For long-running commands: call `fn` (once) instead of exiting when stdout's reader goes away.
 * Returns a function that restores the default.
 */
export function whenStdoutGone(fn: () => void): () => void {
  onStdoutGone = fn;
  return () => {
    if (onStdoutGone === fn) onStdoutGone = undefined;
  };
}
