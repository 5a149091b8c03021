/**
 * Claims: what a running vmpm has changed on a guest and not yet put back (it stopped it, it switched
 * migration settings on for a snapshot), kept in a small file while it holds them, so that after a
 * `kill -9` (or a crash, or a power cut of vmpm's host only) the next vmpm against the same VM can say
 * who stopped the guest, when, and the exact command that undoes it. Nothing is ever undone
 * automatically: resuming a guest is the policy's call, not vmpm's.
 *
 * One file per capture: RUNTIME/claim-<endpoint hash>-<pid>.json (format: docs/claims.md), where
 * RUNTIME is $VMPM_RUNTIME_DIR, else /run/vmpm for root, else $XDG_RUNTIME_DIR/vmpm, else
 * $TMPDIR/vmpm-<uid> (directory 0700, files 0600). It is written before a state-changing command is
 * sent (so no kill can fall between the change and the record), rewritten after an undo succeeds,
 * and removed when the capture ends with nothing outstanding. It names the guest by endpoint and, once
 * known, by its UUID, so a vmpm that reaches the same guest another way (its libvirt domain instead of
 * a QMP socket, or the reverse) finds it too; and it names the QEMU process (its socket file, its
 * libvirt domain id), so a claim about a QEMU that has since exited is not taken for the QEMU started
 * after it at the same place.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptureAction } from '../bundle/schema';
import { describeError } from '../util/errors';

export interface ClaimChange {
  /** stopped: vmpm stopped the guest; background-snapshot / max-bandwidth: vmpm changed that migration setting. */
  what: 'stopped' | 'background-snapshot' | 'max-bandwidth';
  at: string;
  /** The QMP command (and arguments) that puts it back. */
  undo: { command: string; arguments?: Record<string, unknown> };
}

export interface ClaimRecord {
  version: 1;
  pid: number;
  /** The process's start time (/proc/PID/stat field 22), so a reused pid is not taken for the claimant. */
  pidStart: string | null;
  /** capture, watch: what kind of vmpm run made the changes. */
  origin: string;
  /** The quiesce policy of that run (keep-stopped: it was never going to resume the guest). */
  policy: string;
  endpoint: string;
  /** The guest's UUID (query-uuid; libvirt's domain UUID, which libvirt gives QEMU), null when unknown or all-zero. Absent in older files. */
  uuid?: string | null;
  /**
   * Which QEMU process the changes were made on, as the transport tells it (QmpClient.instance:
   * `unix-socket:DEV:INO:MTIME_NS`, `libvirt-domain-id:N`); null when it cannot tell. A claim whose
   * QEMU is gone is dropped, not reported (claim-report.ts). Absent in older files.
   */
  instance?: string | null;
  output: string;
  startedAt: string;
  changes: ClaimChange[];
}

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** A UUID that identifies a guest: well formed (any case) and not QEMU's all-zero "none set". */
export function guestUuid(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const u = value.trim().toLowerCase();
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(u) && u !== NIL_UUID ? u : null;
}

export function runtimeDir(): string {
  if (process.env.VMPM_RUNTIME_DIR) return process.env.VMPM_RUNTIME_DIR;
  if (process.getuid?.() === 0) return '/run/vmpm';
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'vmpm');
  return join(tmpdir(), `vmpm-${process.getuid?.() ?? 'user'}`);
}

export function endpointKey(endpoint: string): string {
  return createHash('sha256').update(endpoint).digest('hex').slice(0, 16);
}

/** Field 22 of /proc/PID/stat (clock ticks since boot when it started), or null off Linux. */
export function processStart(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Whether the process that was `pid` (started at `start`, processStart()'s value, when known) still
 * runs. Where it cannot be told (another user's process under a /proc mounted hidepid), it counts as
 * running: what it owns (a claim, a FIFO directory) is left alone rather than taken from a live vmpm.
 * A pid that runs with another start time is a reused pid: not that process.
 */
export function processRuns(pid: number, start: string | null | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === null || start === undefined) return true;
  const now = processStart(pid);
  return now === null || now === start;
}

/**
 * The changes `actions` leave outstanding, in order. A change counts from the moment its command is
 * recorded (even before QEMU answered: it may have happened); an undo only once it succeeded.
 */
export function outstandingChanges(actions: readonly CaptureAction[], pending: ReadonlySet<CaptureAction>): ClaimChange[] {
  const open = new Map<ClaimChange['what'], ClaimChange>();
  for (const a of actions) {
    const done = a.result === 'ok' && !pending.has(a);
    const maybe = a.result === 'ok';
    const detail = a.detail ?? '';
    if (a.action === 'stop' && maybe) open.set('stopped', { what: 'stopped', at: a.at, undo: { command: 'cont' } });
    else if (a.action === 'cont' && done) open.delete('stopped');
    else if (a.action === 'migrate-set-capabilities' && maybe && /^background-snapshot on \(was off\)/.test(detail)) {
      open.set('background-snapshot', { what: 'background-snapshot', at: a.at, undo: { command: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'background-snapshot', state: false }] } } });
    } else if (a.action === 'migrate-set-capabilities' && done && detail.startsWith('background-snapshot back to')) open.delete('background-snapshot');
    else if (a.action === 'migrate-set-parameters' && maybe) {
      const was = /^max-bandwidth unlimited \(was (\d+)/.exec(detail);
      if (was) open.set('max-bandwidth', { what: 'max-bandwidth', at: a.at, undo: { command: 'migrate-set-parameters', arguments: { 'max-bandwidth': Number(was[1]) } } });
      else if (done && detail.startsWith('max-bandwidth back to')) open.delete('max-bandwidth');
    }
  }
  return [...open.values()];
}

/** The claim file of one capture. Never throws: a claim that cannot be written is one warning. */
export class Claim {
  readonly path: string;
  private written = false;
  private warned = false;
  private uuid: string | null = null;
  private last: ClaimChange[] = [];

  constructor(
    private readonly base: Omit<ClaimRecord, 'version' | 'changes' | 'pid' | 'pidStart' | 'startedAt'>,
    private readonly warnings: string[],
    private readonly dir = runtimeDir(),
  ) {
    this.path = join(this.dir, `claim-${endpointKey(base.endpoint)}-${process.pid}.json`);
  }

  private readonly startedAt = new Date().toISOString();

  /** The guest's UUID once known (the survey reads it before any change); a file already written (watch's stop) is rewritten with it. */
  identify(uuid: string | null | undefined): void {
    const u = guestUuid(uuid);
    if (u === null || u === this.uuid) return;
    this.uuid = u;
    if (this.written) this.sync(this.last);
  }

  /** Rewrites the file to hold `changes`, or removes it when there are none. */
  sync(changes: ClaimChange[]): void {
    this.last = changes;
    try {
      if (changes.length === 0) {
        if (this.written) unlinkSync(this.path);
        this.written = false;
        return;
      }
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const record: ClaimRecord = { version: 1, pid: process.pid, pidStart: processStart('self'), ...this.base, uuid: this.uuid, startedAt: this.startedAt, changes };
      const tmp = `${this.path}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      renameSync(tmp, this.path);
      this.written = true;
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      this.warnings.push(`could not record what vmpm changed on the guest in ${this.path} (a vmpm killed now could not be traced): ${describeError(err)}`);
    }
  }
}
