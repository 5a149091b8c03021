/**
 * `vmpm state`: is this VM failover-safe? Failover-safe means: QEMU reports the VM not running, and
 * the out-dir holds a bundle that (1) verifies, (2) is of this VM (same UUID and name), (3) recorded
 * the VM stopped with the same run status it has now, (4) recorded exactly the vCPU registers the VM
 * has now, and (5) was not made after QEMU reset or exited on its own (its trigger destroyed evidence).
 *
 * Why the register check: QMP cannot say whether the VM was resumed and stopped again since the
 * capture (query-status has no "stopped since" and no counter). A vCPU that executed anything since
 * the capture has, in practice, a different RIP/RFLAGS/general registers; comparing the full
 * `info registers -a` text with the one in the bundle detects a resume-and-stop. Limits (documented):
 * a vCPU that was halted, got an interrupt whose handler restored every register, and halted again at
 * the same instruction looks unchanged although RAM may differ; and a guest in `cli; hlt` executes
 * nothing, so there the bundle does still describe it. Check (3) catches the common cases cheaply:
 * guest-panicked and io-error are only entered on the event, so `cont` + `stop` leaves "paused".
 * (6) When `vmpm watch` was connected and saw the VM resumed after it wrote a bundle, it leaves
 * `<bundle>.resumed.json` next to it; such a bundle never qualifies again (covers the halted-vCPU
 * case above whenever the watcher was running).
 */
import { access, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleReader, readJsonSection } from '../bundle';
import { reportStaleClaims } from '../capture/claim-report';
import type { Manifest } from '../bundle/schema';
import { QmpClient, QmpDisconnectedError, QmpTimeoutError, runStateRule } from '../qmp';
import { VmpmError, describeError } from '../util/errors';
import { destructiveEffect } from './event-effects';
import { NIL_UUID, queryIdentity, type VmIdentity } from './identity';

/** Exit codes of `vmpm state`, for resource agents. */
export const STATE_EXIT = { running: 0, failoverSafe: 10, stoppedNotCaptured: 11, unreachable: 12 } as const;

export type StateVerdict = 'running' | 'failover-safe' | 'stopped-not-captured' | 'unreachable';

export interface FailoverCheck {
  check: string;
  ok: boolean;
  detail: string;
}

export interface FailoverState {
  endpoint: string;
  verdict: StateVerdict;
  exitCode: number;
  failoverSafe: boolean;
  status: string | null;
  running: boolean | null;
  /** Why it is in that state, from the run status and, when matched, the bundle's trigger. */
  reason: string | null;
  /** Over libvirt: the domain state and reason as `virsh domstate --reason` prints them. */
  libvirt?: string;
  vm: VmIdentity | null;
  bundle: { path: string; sha256: string | null; createdAt: string; trigger: string | null } | null;
  /** The checks applied to the newest candidate bundle, in order; empty when none was needed. */
  checks: FailoverCheck[];
  /** One line saying why the verdict is what it is. */
  explanation: string;
  /** What a vmpm that is gone left on this guest (it stopped it and could not resume it ...), with the command that undoes each. */
  previousVmpm?: string[];
  error?: string;
}

const EXIT_OF: Record<StateVerdict, number> = {
  running: STATE_EXIT.running,
  'failover-safe': STATE_EXIT.failoverSafe,
  'stopped-not-captured': STATE_EXIT.stoppedNotCaptured,
  unreachable: STATE_EXIT.unreachable,
};

/** A state with its exit code and failover-safe flag derived from the verdict (never set by hand). */
function verdictState(verdict: StateVerdict, rest: Omit<FailoverState, 'verdict' | 'exitCode' | 'failoverSafe'>): FailoverState {
  return { ...rest, verdict, exitCode: EXIT_OF[verdict], failoverSafe: verdict === 'failover-safe' };
}

/** Connects, checks, disconnects. An unreachable monitor is a verdict (exit 12), not an error. */
export async function queryState(
  endpoint: string,
  options: { outDir?: string; connectTimeoutMs?: number; verify?: boolean; connect?: (o: { connectTimeoutMs: number }) => Promise<QmpClient>; note?: (line: string) => void } = {},
): Promise<FailoverState> {
  let client: QmpClient;
  try {
    // `connect` opens other transports (libvirt); by default `endpoint` is a QMP socket.
    const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
    client = options.connect ? await options.connect({ connectTimeoutMs }) : await QmpClient.connect(endpoint, { connectTimeoutMs });
  } catch (err) {
    return verdictState('unreachable', {
      endpoint, status: null, running: null,
      reason: null, vm: null, bundle: null, checks: [], explanation: `monitor unreachable: ${describeError(err)}`, error: describeError(err),
    });
  }
  try {
    const previous: string[] = [];
    await reportStaleClaims(client, (line) => previous.push(line), options.note ? { note: options.note } : {});
    const state = await checkFailoverState(client, options);
    return previous.length ? { ...state, previousVmpm: previous } : state;
  } catch (err) {
    // The monitor went away or stopped answering mid-check: to a resource agent that is "unreachable".
    if (!(err instanceof QmpDisconnectedError || err instanceof QmpTimeoutError)) throw err;
    return verdictState('unreachable', {
      endpoint, status: null, running: null,
      reason: null, vm: null, bundle: null, checks: [], explanation: `monitor stopped answering: ${describeError(err)}`, error: describeError(err),
    });
  } finally {
    await client.close().catch(() => undefined);
  }
}

export async function checkFailoverState(client: QmpClient, options: { outDir?: string; verify?: boolean }): Promise<FailoverState> {
  const status = await client.execute<{ status: string; running: boolean; libvirt?: { state?: unknown; reason?: unknown } }>('query-status');
  const vm = await queryIdentity(client);
  const base: Pick<FailoverState, 'endpoint' | 'status' | 'running' | 'vm' | 'reason' | 'libvirt'> = {
    endpoint: client.endpoint,
    status: status.status,
    running: status.running,
    vm,
    reason: runStateRule(status.status)?.reason ?? status.status,
  };
  const lv = status.libvirt;
  if (lv !== undefined && typeof lv.state === 'string' && typeof lv.reason === 'string') base.libvirt = `${lv.state} (${lv.reason})`;
  if (status.running) {
    return verdictState('running', { ...base, bundle: null, checks: [], explanation: 'the VM is running' });
  }
  const notCaptured = (explanation: string, checks: FailoverCheck[] = [], bundle: FailoverState['bundle'] = null): FailoverState =>
    verdictState('stopped-not-captured', { ...base, bundle, checks, explanation });
  if (options.outDir === undefined) return notCaptured('stopped; no --out-dir given, so no bundle to check');

  const candidates = await bundlesOf(options.outDir, vm);
  const newest = candidates[0];
  if (!newest) return notCaptured(`stopped, but ${options.outDir} holds no bundle of this VM (${vm.name ?? '-'} ${vm.uuid ?? 'no uuid'})`);

  const { path, manifest, reader } = newest;
  try {
    const checks: FailoverCheck[] = [];
    const trig = manifest.policy.trigger;
    const bundle = { path, sha256: null as string | null, createdAt: manifest.createdAt, trigger: trig?.summary ?? null };
    const after = manifest.runState.after;
    checks.push({ check: 'captured stopped', ok: !after.running, detail: `bundle recorded run state ${after.status} after the capture` });
    checks.push({ check: 'same run state', ok: after.status === status.status, detail: `bundle ${after.status}, VM now ${status.status}` });
    checks.push(await registersCheck(client, reader));
    const resumed = await exists(resumeMarkerPath(path));
    checks.push({ check: 'no resume seen by the watcher', ok: !resumed, detail: resumed ? `${resumeMarkerPath(path)} records a RESUME after the capture` : 'no resume recorded' });
    const effect = trig ? destructiveEffect(rawEvent(trig.raw)) : undefined;
    checks.push({ check: 'evidence intact', ok: effect === undefined, detail: effect ? `trigger ${trig?.summary}: QEMU ${effect === 'reset' ? 'reset the guest' : 'shut down'} before the capture` : 'no reset or exit by QEMU before the capture' });
    if (checks.every((c) => c.ok) && options.verify !== false) {
      const v = await reader.verify();
      bundle.sha256 = v.sha256;
      checks.push({ check: 'bundle verifies', ok: v.ok, detail: v.ok ? `sha256 ${v.sha256}` : v.problems.slice(0, 3).join('; ') });
    }
    const failed = checks.find((c) => !c.ok);
    if (failed) return notCaptured(`stopped; newest bundle ${path} does not qualify: ${failed.check}: ${failed.detail}`, checks, bundle);
    return verdictState('failover-safe', {
      ...base,
      reason: trig ? `${base.reason}; trigger: ${trig.summary}` : base.reason,
      bundle, checks,
      explanation: `stopped and captured in ${path}`,
    });
  } finally {
    for (const c of candidates) await c.reader.close().catch(() => undefined);
  }
}

interface Candidate {
  path: string;
  manifest: Manifest;
  reader: BundleReader;
}

/** Bundles in dir whose manifest names this VM, newest first. Unreadable files are skipped. */
async function bundlesOf(dir: string, vm: VmIdentity): Promise<Candidate[]> {
  const entries = await readdir(dir).catch((err: unknown) => {
    throw new VmpmError(`--out-dir ${dir}: cannot list bundles: ${describeError(err)}`, { cause: err });
  });
  const names = entries.filter((n) => n.endsWith('.vmpm') && !n.startsWith('.') && !n.includes('.partial'));
  const found: Candidate[] = [];
  for (const name of names) {
    const path = join(dir, name);
    let reader: BundleReader | undefined;
    try {
      reader = await BundleReader.open(path);
      const manifest = await readJsonSection(reader, 'manifest');
      const uuid = manifest.vm.uuid && manifest.vm.uuid !== NIL_UUID ? manifest.vm.uuid : null;
      if (uuid === vm.uuid && manifest.vm.name === vm.name) {
        found.push({ path, manifest, reader });
        continue;
      }
    } catch {
      // not a bundle, or a damaged one: it cannot make the VM failover-safe anyway
    }
    await reader?.close().catch(() => undefined);
  }
  found.sort((a, b) => b.manifest.createdAt.localeCompare(a.manifest.createdAt));
  // Only the newest matters (an older capture cannot describe the VM better); close the rest now.
  for (const c of found.slice(1)) await c.reader.close().catch(() => undefined);
  return found.slice(0, 1);
}

async function registersCheck(client: QmpClient, reader: BundleReader): Promise<FailoverCheck> {
  const check = 'registers unchanged';
  if (!reader.has('cpus')) return { check, ok: false, detail: 'bundle has no cpus section to compare with' };
  const cpus = await readJsonSection(reader, 'cpus');
  const then = cpus.cpus.slice().sort((a, b) => a.index - b.index).map((c) => normaliseRegisters(c.raw)).join('\n');
  const now = normaliseRegisters(await client.hmp('info registers -a'));
  if (then === now) return { check, ok: true, detail: `all ${cpus.cpus.length} vCPU(s) identical to the bundle (no instruction executed since)` };
  const a = then.split('\n');
  const b = now.split('\n');
  const i = a.findIndex((line, k) => line !== b[k]);
  return { check, ok: false, detail: `vCPU state differs from the bundle (resumed since?): "${a[i] ?? ''}" vs "${b[i] ?? ''}"` };
}

/** Register text without CPU headers, blank lines and trailing blanks, so framing differences do not count. */
export function normaliseRegisters(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '' && !/^CPU#\d+$/.test(l.trim()))
    .join('\n');
}

function rawEvent(raw: unknown): { event: string; data?: unknown } {
  if (raw !== null && typeof raw === 'object' && typeof (raw as { event?: unknown }).event === 'string') return raw as { event: string; data?: unknown };
  return { event: '' };
}

/** Where the watcher records that a captured VM was resumed (see check 6 above). */
export function resumeMarkerPath(bundlePath: string): string {
  return `${bundlePath}.resumed.json`;
}

export async function recordResume(bundlePath: string, resume: { timestamp: { seconds: number; microseconds: number }; receivedAt: Date }): Promise<void> {
  const record = { event: 'RESUME', timestamp: resume.timestamp, receivedAt: resume.receivedAt.toISOString(), bundle: bundlePath };
  await writeFile(resumeMarkerPath(bundlePath), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
