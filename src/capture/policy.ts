/**
 * The quiesce policy as pure decisions, so the rules are testable without QEMU:
 *  - stop-and-restore (default): stop a running guest first, capture, resume it only if vmpm stopped it
 *    and it is still in the plain `paused` state vmpm left it in;
 *  - keep-stopped: stop a running guest and leave it stopped (the failover-safe state);
 *  - no-stop: never stop; a running guest is captured inconsistently and the manifest says so.
 * vmpm never resumes a guest that was paused, panicked or in io-error before it came, and never resets,
 * kills or quits one.
 */
import type { CaptureAction, QuiescePolicy } from '../bundle/schema';

export interface StatusLike {
  status: string;
  running: boolean;
}

/** Should the capture begin by sending `stop`? */
export function shouldStop(policy: QuiescePolicy, before: StatusLike): boolean {
  return policy !== 'no-stop' && before.running;
}

/** True when a `stop` vmpm itself sent (in this capture or, for watch, just before it) succeeded. */
export function vmpmStoppedIt(actions: CaptureAction[]): boolean {
  return actions.some((a) => a.action === 'stop' && a.result === 'ok');
}

export type ResumeDecision = { resume: true } | { resume: false; why: string };

/**
 * After the capture: resume only when the policy restores, vmpm stopped the guest, and the guest is
 * still merely `paused` (if it panicked, hit an I/O error or shut down meanwhile, that is news the
 * operator must see, not something to paper over with `cont`).
 */
export function decideResume(policy: QuiescePolicy, stoppedByVmpm: boolean, now: StatusLike): ResumeDecision {
  if (policy === 'keep-stopped') return { resume: false, why: 'policy keep-stopped' };
  if (policy === 'no-stop') return { resume: false, why: 'policy no-stop (vmpm did not stop it)' };
  if (!stoppedByVmpm) return { resume: false, why: 'the guest was not running when vmpm came' };
  if (now.running) return { resume: false, why: 'already running' };
  if (now.status !== 'paused') return { resume: false, why: `the guest is now ${now.status}, not paused by vmpm` };
  return { resume: true };
}

/** A capture is consistent when the guest did not run while registers and memory were read. */
export function isConsistent(policy: QuiescePolicy, before: StatusLike): boolean {
  return !(policy === 'no-stop' && before.running);
}
