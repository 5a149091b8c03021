import { closeSync } from 'node:fs';
import { constants } from 'node:os';
import { isatty } from 'node:tty';

/** The signals a user or a supervisor sends to stop a command: Ctrl-C, kill, and a closed terminal. */
const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * One process-wide listener per stop signal routes it to the innermost abortOnSignals() scope. With no
 * scope active, a process started by bin/vmpm (`installStopSignals`) ends at once with one line and
 * 128 + N (nothing is in flight that needs undoing: a command that must clean up holds a scope), or,
 * once the command has finished and the process is only draining, with the command's own exit code.
 * Without installStopSignals (vmpm used as a library) the listeners exist only while a scope does.
 *
 * Before this (issue 13), a capture installed its handler only just before writing the bundle and
 * removed it with `once` on the first signal: a SIGINT/SIGTERM during start-up, module loading, the QMP
 * connect or the stale-claim check took the signal's default action (killed, no message, no 128 + N),
 * and so would a second Ctrl-C during the cleanup that resumes the guest.
 */
const scopes: Array<(name: NodeJS.Signals) => void> = [];
let listening = false;
let persistent = false;
let finishedCode: number | undefined;

function route(name: NodeJS.Signals): void {
  const scope = scopes[scopes.length - 1];
  if (scope) return scope(name);
  // Another part of vmpm handles this signal itself (watch's supervisor): not ours to act on.
  if (process.listenerCount(name) > 1) return;
  if (finishedCode !== undefined) process.exit(finishedCode);
  process.stderr.write(`vmpm: interrupted by ${name}\n`);
  process.exit(exitCodeForSignal(name));
}

function listen(on: boolean): void {
  if (listening === on) return;
  listening = on;
  for (const s of STOP_SIGNALS) {
    if (on) process.on(s, route);
    else process.removeListener(s, route);
  }
}

/** bin/vmpm, before anything else loads: from here on no stop signal takes its default action. */
export function installStopSignals(): void {
  persistent = true;
  listen(true);
  releaseHungUpTerminal();
}

/**
 * When the terminal vmpm was started from closes (the SIGHUP above), its stdio descriptors stay open
 * on a hung-up tty. On exit Node 20 restores each one's tty mode and asserts that this worked: on a
 * hung-up tty it fails (EIO), so a vmpm that had cleaned up and chosen 129 died of SIGABRT or SIGSEGV
 * instead (nodejs/node#51519; the check was removed in later Node releases). At exit, after the last
 * write, a descriptor that was a terminal at start and is not one now is closed: Node skips it.
 */
function releaseHungUpTerminal(): void {
  const ttys = [0, 1, 2].filter((fd) => isatty(fd));
  if (ttys.length === 0) return;
  process.on('exit', () => {
    for (const fd of ttys) {
      if (isatty(fd)) continue;
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  });
}

/** main(): the command has finished with `code`; a stop signal while the process drains exits with it. */
export function markCommandFinished(code: number): void {
  finishedCode = code;
}

/**
 * Ctrl-C / SIGTERM / SIGHUP turned into an AbortSignal, for commands that must clean up (remove a
 * partial output, restore a guest) instead of dying mid-write. While installed, the signals no longer
 * kill the process, a second one included: the command has to watch `signal` and stop itself. The
 * abort reason is the first signal's name. dispose() ends the scope.
 */
export function abortOnSignals(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (!controller.signal.aborted) controller.abort(name);
  };
  scopes.push(onSignal);
  listen(true);
  let disposed = false;
  return {
    signal: controller.signal,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      const i = scopes.lastIndexOf(onSignal);
      if (i >= 0) scopes.splice(i, 1);
      if (scopes.length === 0 && !persistent) listen(false);
    },
  };
}

/** The shell's convention for "stopped by signal N": 128 + N (SIGINT 130, SIGTERM 143, SIGHUP 129). */
export function exitCodeForSignal(name: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[name];
  return n === undefined ? 1 : 128 + n;
}
