/**
 * The one error a failed capture throws: what failed as fields (the phase, the kind of cause, whether
 * the guest vmpm stopped was left stopped), so watch and the CLI can act on "QEMU died" versus "disk
 * full" without reading text; the one-line message is built from those fields (as qemu.qmp's
 * error.py builds its messages).
 */
import { FormatError } from '../formats/errors';
import { QmpError } from '../qmp';
import { VmpmError } from '../util/errors';

/**
 * interrupted: the caller aborted (Ctrl-C, watch stopping); qemu-died: the QMP connection closed
 * under the capture; disk-full: the host ran out of space writing the bundle; format: QEMU's output
 * (ELF, migration stream) was malformed; qmp: a QMP command failed or timed out; other: anything else.
 */
export type CaptureFailureKind = 'interrupted' | 'qemu-died' | 'disk-full' | 'format' | 'qmp' | 'other';

export interface CaptureErrorFields {
  phase: string;
  kind: CaptureFailureKind;
  /** The cause's own one-line description. */
  detail: string;
  /** Why the guest vmpm stopped is still stopped, when it is (undefined: not stopped by vmpm, or resumed). */
  leftStopped?: string | undefined;
  cause?: unknown;
}

export class CaptureError extends VmpmError {
  readonly phase: string;
  readonly kind: CaptureFailureKind;
  readonly detail: string;
  readonly leftStopped: string | undefined;

  constructor(f: CaptureErrorFields) {
    super(captureErrorMessage(f), { cause: f.cause });
    this.name = 'CaptureError';
    this.phase = f.phase;
    this.kind = f.kind;
    this.detail = f.detail;
    this.leftStopped = f.leftStopped;
  }

  /** True when the guest vmpm stopped could not be resumed. */
  get guestLeftStopped(): boolean {
    return this.leftStopped !== undefined;
  }
}

function captureErrorMessage(f: CaptureErrorFields): string {
  let text: string;
  if (f.kind === 'interrupted') text = `capture interrupted during ${f.phase}; nothing complete was written`;
  else if (f.kind === 'qemu-died') text = `QEMU closed the QMP connection during ${f.phase} (${f.detail}); capture abandoned`;
  else text = f.detail.startsWith('capture') ? f.detail : `capture failed during ${f.phase}: ${f.detail}`;
  // The user must hear that the guest vmpm stopped is still stopped: nothing else will tell them.
  return f.leftStopped === undefined ? text : `${text}; the guest vmpm stopped is left stopped (${f.leftStopped})`;
}

/** What kind of failure `err` is, from its type and the state of the session and the abort signal. */
export function classifyCaptureFailure(err: unknown, sessionClosed: boolean, aborted: boolean): CaptureFailureKind {
  if (aborted) return 'interrupted';
  if (sessionClosed) return 'qemu-died';
  if (hasCode(err, 'ENOSPC') || hasCode(err, 'EDQUOT')) return 'disk-full';
  if (err instanceof FormatError) return 'format';
  if (err instanceof QmpError) return 'qmp';
  return 'other';
}

/** An errno code anywhere in the cause chain (the bundle writer wraps fs errors). */
function hasCode(err: unknown, code: string): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (typeof e === 'object' && 'code' in e && (e as { code: unknown }).code === code) return true;
    if (e instanceof Error && /\bENOSPC\b/.test(e.message) && code === 'ENOSPC') return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}
