/**
 * Telling HA software about an incident: one JSON line on stdout (always first, so it is never lost),
 * then the optional `--exec` hook with the same facts in VMPM_* environment variables. The hook runs
 * with a timeout (its process group is killed when it expires) and its outcome is logged on stderr;
 * a failing, hanging or missing hook never affects the stdout line or the watcher.
 */
import { spawn } from 'node:child_process';
import type { CaptureFailureKind } from '../capture/capture-error';
import { describeError } from '../util/errors';

export interface IncidentNotification {
  type: 'incident';
  /** ISO time the notification was emitted. */
  at: string;
  vm: { endpoint: string; name: string | null; uuid: string | null };
  /**
   * What set the incident off. source `event`: a QMP event as received (its data included). source
   * `run-state`: the watcher found the VM already stopped in that state (it connected late or QEMU
   * restarted under it); `event` then names the event that state is graded as, and there is no data.
   */
  trigger: { event: string; source: 'event' | 'run-state'; time: string; summary: string; data?: unknown };
  /** Every serious event recorded in this incident (the trigger first); a storm yields one incident. */
  events: Array<{ event: string; time: string }>;
  /** vmpm: the watcher sent `stop`; qemu: the VM was not running already (QEMU paused it on the event, or it was stopped before); none: stop failed. */
  stoppedBy: 'vmpm' | 'qemu' | 'none';
  /** Milliseconds from the event's arrival at the watcher to the `stop` reply (null when no stop was sent). */
  stopMs: number | null;
  bundle: string | null;
  sha256: string | null;
  size: number | null;
  /**
   * The bundle's SSHSIG signature file (watch --sign-key), absent without it. The line goes out while
   * the file is being written; the `signature` line that follows says when it is (or that it failed).
   */
  signature?: string | null;
  /** Milliseconds from the event's arrival to the finished bundle. */
  captureMs: number | null;
  /** Stopped, captured, and nothing QEMU did on its own destroyed the evidence. */
  failoverSafe: boolean;
  /** What could not be captured and why (QEMU reset or exited, capture failed ...). */
  lost: string[];
  /**
   * Why the capture failed, when it did: `disk-full` (the out-dir's file system is full: nothing will be
   * captured until space is freed), `qemu-died`, `interrupted`, `format`, `qmp` or `other`. `error`
   * has the words, including the guest's run state after the failure.
   */
  captureFailure?: CaptureFailureKind;
  /** The guest kernel's panic line from the captured memory ("Kernel panic - not syncing: ..."), when found in time. */
  panic?: string | null;
  error?: string;
}

/** Follows an incident line under --sign-key once the signature is written (`signature` null and `error` if not). */
export interface SignatureNotification {
  type: 'signature';
  at: string;
  vm: IncidentNotification['vm'];
  bundle: string;
  signature: string | null;
  error?: string;
}

/** Where watch --sign-key writes a bundle's signature (`vmpm sign`'s default too). */
export function signaturePathOf(bundle: string): string {
  return `${bundle}.sig`;
}

export function notificationLine(n: IncidentNotification | SignatureNotification): string {
  return JSON.stringify(n, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
}

/** The environment a hook sees: the facts of the notification, plus the whole line in VMPM_NOTIFICATION. */
export function hookEnvironment(n: IncidentNotification): Record<string, string> {
  return {
    VMPM_EVENT: n.trigger.event,
    VMPM_EVENT_TIME: n.trigger.time,
    VMPM_TRIGGER_SOURCE: n.trigger.source,
    VMPM_VM_ENDPOINT: n.vm.endpoint,
    VMPM_VM_NAME: n.vm.name ?? '',
    VMPM_VM_UUID: n.vm.uuid ?? '',
    VMPM_STOPPED_BY: n.stoppedBy,
    VMPM_STOP_MS: n.stopMs === null ? '' : n.stopMs.toFixed(3),
    VMPM_BUNDLE: n.bundle ?? '',
    VMPM_SHA256: n.sha256 ?? '',
    VMPM_SIGNATURE: n.signature ?? '',
    VMPM_FAILOVER_SAFE: n.failoverSafe ? '1' : '0',
    VMPM_ERROR: n.error ?? '',
    VMPM_CAPTURE_FAILURE: n.captureFailure ?? '',
    VMPM_PANIC: n.panic ?? '',
    VMPM_NOTIFICATION: notificationLine(n),
  };
}

export interface HookResult {
  /** Exit code, or null when killed by a signal (including our timeout) or when it could not start. */
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** Last bytes of its combined stdout/stderr, for the log line. */
  output: string;
  spawnError?: string;
}

const OUTPUT_TAIL = 2000;

/**
 * Runs `command` with `sh -c` in its own process group. Resolves (never rejects) when it exits or
 * after `timeoutMs`, when the whole group gets SIGKILL. Output is kept to a bounded tail.
 */
export function runHook(command: string, env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const finish = (r: Omit<HookResult, 'durationMs' | 'output' | 'timedOut'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, timedOut, output: output.trim(), durationMs: performance.now() - started });
    };
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout kills the hook's children too
    });
    const collect = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (err) => finish({ code: null, signal: null, spawnError: describeError(err) }));
    child.on('close', (code, signal) => finish({ code, signal }));
  });
}

export function describeHookResult(r: HookResult, timeoutMs: number): string {
  const tail = r.output ? `; output: ${r.output.replace(/\s+/g, ' ').slice(-300)}` : '';
  if (r.spawnError) return `could not be started: ${r.spawnError}`;
  if (r.timedOut) return `timed out after ${timeoutMs} ms and was killed${tail}`;
  if (r.signal) return `was killed by ${r.signal} after ${Math.round(r.durationMs)} ms${tail}`;
  return `exited with code ${r.code} after ${Math.round(r.durationMs)} ms${tail}`;
}
