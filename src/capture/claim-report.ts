/**
 * The next vmpm's side of claims (claim.ts): finds the claim files a vmpm that is gone left for this
 * guest (the same endpoint, or the same guest UUID reached through another transport: a libvirt
 * domain and its QEMU's QMP socket), checks against the guest what is still as it left it, and says
 * so with the exact command that undoes each change. It never undoes anything itself. A claim made
 * through this endpoint that nothing is left of is removed, and so is one about a QEMU that has exited
 * since (claimQemuGone): whatever it said held for that QEMU, not for one started later at the same
 * socket or domain. A claim matched only by UUID is reported but never removed for being undone
 * here: two QEMUs can share a UUID, and the claim may be about the other one.
 */
import { readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { socketFileIdentity, type QmpClient } from '../qmp';
import { isRecord } from '../util/guards';
import { guestUuid, processRuns, runtimeDir, type ClaimChange, type ClaimRecord } from './claim';

/** A claim file is a few hundred bytes; anything much larger is not one vmpm wrote. */
const MAX_CLAIM_BYTES = 64 * 1024;

export interface StaleClaim extends ClaimRecord {
  /** The claim file, and its `.tmp` sibling when a kill struck between its write and its rename. */
  paths: string[];
}

/** The guest a claim is looked for: the endpoint as the client names it, its UUID and QEMU instance (QmpClient.instance) when known. */
export interface GuestKey {
  endpoint: string;
  uuid?: string | null;
  instance?: string | null;
}

/**
 * Why the QEMU `claim` was made on is no longer running, or null when it may be (or it cannot be told:
 * a claim from before the `instance` field, a TCP endpoint, a relative socket path, a socket file
 * vmpm may not look at). `here` is the guest this vmpm is connected to: a claim made through the same
 * endpoint is about another QEMU when the instances differ. A claim made on a unix socket (an absolute
 * path) is also checked where it is, whoever asks: no socket there now, or another one, means the QEMU
 * is gone (it made a new socket file each start). Never says gone for the QEMU still running.
 */
export function claimQemuGone(claim: ClaimRecord, here?: GuestKey): string | null {
  const made = claim.instance;
  if (typeof made !== 'string' || made === '') return null;
  const unix = claim.endpoint.startsWith('unix:') ? claim.endpoint.slice(5) : undefined;
  // A relative socket path names another file from another working directory: it proves nothing.
  if (unix !== undefined && !isAbsolute(unix)) return null;
  if (here && here.endpoint === claim.endpoint && typeof here.instance === 'string' && here.instance !== '') {
    if (here.instance !== made) return unix !== undefined ? 'another QEMU has its QMP socket now' : 'the libvirt domain has been started again since';
    return null;
  }
  if (unix !== undefined && made.startsWith('unix-socket:')) {
    const now = socketFileIdentity(unix);
    if (now.state === 'absent') return 'its QMP socket is gone';
    if (now.state === 'present' && now.instance !== made) return 'another QEMU has its QMP socket now';
  }
  return null;
}

export type ClaimMatch = 'endpoint' | 'uuid';

/**
 * How `claim` is about `guest`: `endpoint` (made through the same endpoint string), `uuid` (made through
 * another endpoint, and both name the same real guest UUID), or null (not this guest's).
 */
export function claimMatch(claim: ClaimRecord, guest: GuestKey): ClaimMatch | null {
  if (claim.endpoint === guest.endpoint) return 'endpoint';
  const u = guestUuid(guest.uuid);
  return u !== null && guestUuid(claim.uuid) === u ? 'uuid' : null;
}

/** A claim on this guest, and how it matched (claimMatch): only an `endpoint` match is ever removed for being undone here. */
export interface FoundClaim extends StaleClaim {
  match: ClaimMatch;
}

export interface StaleClaims {
  /** The claims on the guest whose QEMU may be the one there now, oldest first. */
  claims: FoundClaim[];
  /** Claims (on this guest or any other) about a QEMU that has exited since, and why (claimQemuGone). Nothing is removed here. */
  exited: Array<StaleClaim & { why: string }>;
}

/**
 * The claims whose vmpm process is gone (or its pid now belongs to another process), as seen from
 * `guest` (its endpoint, and its QEMU instance when known): those on it, and those (on any guest)
 * about a QEMU that has exited. The one matching path: reportStaleClaims reports and removes by it.
 * The guest's UUID is `guest.uuid` when given, else `askUuid()` (a QMP round trip), asked only when a
 * claim made through another endpoint names a UUID.
 *
 * Claim.sync() writes `NAME.json.tmp` then renames it over `NAME.json`: a kill -9 between the two
 * leaves the tmp file, which then holds the newer record (a tmp that does not parse was cut short and
 * the `.json`, if any, is the record). Both files belong to the claim and go when it does.
 */
export async function staleClaims(guest: string | GuestKey, dir = runtimeDir(), askUuid?: () => Promise<string | null>): Promise<StaleClaims> {
  const key: GuestKey = typeof guest === 'string' ? { endpoint: guest } : guest;
  const live: StaleClaim[] = [];
  const exited: StaleClaims['exited'] = [];
  for (const c of allStaleClaims(dir)) {
    const why = claimQemuGone(c, key);
    if (why === null) live.push(c);
    else exited.push({ ...c, why });
  }
  let uuid = guestUuid(key.uuid);
  if (key.uuid === undefined && askUuid && live.some((c) => c.endpoint !== key.endpoint && guestUuid(c.uuid) !== null)) uuid = guestUuid(await askUuid());
  const claims: FoundClaim[] = [];
  for (const c of live) {
    const match = claimMatch(c, { ...key, uuid });
    if (match !== null) claims.push({ ...c, match });
  }
  return { claims, exited };
}

/** Every claim in `dir` whose vmpm is gone, whatever guest it is about (the files' names key only the endpoint), oldest first. */
function allStaleClaims(dir: string): StaleClaim[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const bases = new Set(names.filter((n) => n.startsWith('claim-') && (n.endsWith('.json') || n.endsWith('.json.tmp'))).map((n) => n.replace(/\.tmp$/, '')));
  const out: StaleClaim[] = [];
  for (const base of bases) {
    const paths = [base, `${base}.tmp`].filter((n) => names.includes(n)).map((n) => join(dir, n));
    const pidInName = Number(/-(\d+)\.json$/.exec(base)?.[1]);
    if (pidInName === process.pid) continue;
    const record = readClaim(join(dir, `${base}.tmp`)) ?? readClaim(join(dir, base));
    if (!record) {
      // Only a tmp cut short by the kill of a vmpm that is gone: nothing to report, nothing to keep.
      if (paths.length === 1 && paths[0]!.endsWith('.tmp') && Number.isSafeInteger(pidInName) && !processRuns(pidInName, undefined)) removeQuietly(paths[0]!);
      continue;
    }
    if (record.pid === process.pid) continue;
    if (processRuns(record.pid, record.pidStart)) continue; // that vmpm is still running (or cannot be told not to be)
    out.push({ ...record, paths });
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // another vmpm removed it first
  }
}

function readClaim(path: string): ClaimRecord | undefined {
  try {
    if (statSync(path).size > MAX_CLAIM_BYTES) return undefined;
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (!isRecord(v) || v.version !== 1 || typeof v.pid !== 'number' || !Number.isSafeInteger(v.pid) || v.pid <= 0) return undefined;
    if (typeof v.endpoint !== 'string' || typeof v.origin !== 'string' || typeof v.policy !== 'string' || typeof v.startedAt !== 'string') return undefined;
    if (!(v.pidStart === null || typeof v.pidStart === 'string') || typeof v.output !== 'string' || !Array.isArray(v.changes)) return undefined;
    const changes = v.changes.filter(isChange);
    if (changes.length !== v.changes.length) return undefined;
    if (!(v.uuid === undefined || v.uuid === null || typeof v.uuid === 'string')) return undefined;
    if (!(v.instance === undefined || v.instance === null || typeof v.instance === 'string')) return undefined;
    const instance = typeof v.instance === 'string' ? { instance: v.instance } : {};
    return { version: 1, pid: v.pid, pidStart: v.pidStart, origin: v.origin, policy: v.policy, endpoint: v.endpoint, uuid: guestUuid(v.uuid), ...instance, output: v.output, startedAt: v.startedAt, changes };
  } catch {
    return undefined;
  }
}

function isChange(c: unknown): c is ClaimChange {
  if (!isRecord(c) || typeof c.at !== 'string' || !['stopped', 'background-snapshot', 'max-bandwidth'].includes(String(c.what))) return false;
  const u = c.undo;
  return isRecord(u) && typeof u.command === 'string' && (u.arguments === undefined || isRecord(u.arguments));
}

/** `vmpm qmp` with the target of `endpoint`, shell-quoted, running `undo`. */
export function undoCommand(endpoint: string, undo: ClaimChange['undo']): string {
  const q = (s: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const lv = /^libvirt:([^@]+)(?:@(.+))?$/.exec(endpoint);
  const target = lv ? `--libvirt ${q(lv[1]!)}${lv[2] ? ` --connect ${q(lv[2])}` : ''}` : `--qmp ${q(endpoint)}`;
  const args = undo.arguments ? ` ${q(JSON.stringify(undo.arguments))}` : '';
  return `vmpm qmp ${target} ${undo.command}${args} --allow ${undo.command}`;
}

/** Whether `change` is still in effect on the guest (asked of QEMU; unknown counts as yes). */
async function stillInEffect(client: QmpClient, change: ClaimChange, running: boolean): Promise<boolean> {
  try {
    if (change.what === 'stopped') return !running;
    if (change.what === 'background-snapshot') {
      const caps = await client.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities', undefined, { timeoutMs: 5000 });
      return caps.some((c) => c.capability === 'background-snapshot' && c.state);
    }
    const params = await client.execute<Record<string, unknown>>('query-migrate-parameters', undefined, { timeoutMs: 5000 });
    const wanted = change.undo.arguments?.['max-bandwidth'];
    return String(params['max-bandwidth']) !== String(wanted);
  } catch {
    return true;
  }
}

/**
 * One line for one change. `endpoint` is the one this vmpm reached the guest through: the undo command
 * uses it (it works from here); a claim made through another endpoint names that one.
 */
function describeChange(c: StaleClaim, change: ClaimChange, status: string, endpoint: string): string {
  const via = c.endpoint === endpoint ? '' : ` through ${c.endpoint}`;
  const who = `a previous vmpm ${c.origin} (pid ${c.pid}, gone${via})`;
  const undo = undoCommand(endpoint, change.undo);
  if (change.what === 'stopped') {
    if (c.policy === 'keep-stopped') {
      return `${who} stopped this guest at ${change.at} (policy keep-stopped) and never finished its capture into ${c.output}; it is still ${status}. To resume it once that is what your policy wants: ${undo}`;
    }
    return `${who} stopped this guest at ${change.at} and could not resume it; it is still ${status}. vmpm does not resume it by itself; to resume it: ${undo}`;
  }
  const what = change.what === 'background-snapshot' ? 'migration capability background-snapshot on (it was off)' : `migration parameter max-bandwidth unlimited (it was ${String(change.undo.arguments?.['max-bandwidth'])})`;
  return `${who} set ${what} at ${change.at} and could not put it back; to put it back: ${undo}`;
}

export interface ReportOptions {
  /** The claims directory (default runtimeDir()). */
  dir?: string;
  /** Told, one line each, of this endpoint's claims removed because the QEMU they were about has exited. */
  note?: (line: string) => void;
}

/**
 * One line per change a gone vmpm left on this guest that is still in effect. Claims made through this
 * endpoint that nothing is left of (the guest was resumed, the setting put back) are deleted (a claim
 * matched only by UUID is not: another QEMU may have that UUID), and so are claims (on this guest or
 * any other) whose QEMU has exited since (claimQemuGone); those of this endpoint are told to `note`
 * once, those of other endpoints are removed without a word. Never throws.
 */
export async function reportStaleClaims(client: QmpClient, say: (line: string) => void, options: ReportOptions = {}): Promise<number> {
  const endpoint = client.endpoint;
  // Asked of QEMU (or libvirt) only when a claim made through another endpoint may be this guest's.
  const askUuid = (): Promise<string | null> =>
    client.execute<{ UUID?: unknown }>('query-uuid', undefined, { timeoutMs: 5000 }).then(
      (r) => guestUuid(r?.UUID),
      () => null,
    );
  const { claims, exited } = await staleClaims({ endpoint, instance: client.instance }, options.dir ?? runtimeDir(), askUuid);
  for (const c of exited) {
    for (const path of c.paths) removeQuietly(path);
    // Said only of this endpoint's claims: the others are housekeeping about guests this run is not
    // about, and a line about them would be noise in another VM's `state` or capture.
    if (c.endpoint === endpoint) options.note?.(`dropped the claim a previous vmpm ${c.origin} (pid ${c.pid}, gone) left on ${c.endpoint} at ${c.startedAt}: the QEMU it was about has exited (${c.why}); it says nothing about the guest there now`);
  }
  if (claims.length === 0) return 0;
  let status: { status: string; running: boolean };
  try {
    status = await client.execute<{ status: string; running: boolean }>('query-status', undefined, { timeoutMs: 5000 });
  } catch {
    return 0;
  }
  let reported = 0;
  for (const c of claims) {
    const left: ClaimChange[] = [];
    for (const change of c.changes) if (await stillInEffect(client, change, status.running)) left.push(change);
    for (const change of left) say(describeChange(c, change, status.status, endpoint));
    reported += left.length;
    // Nothing left here says nothing left where the claim was made unless it was made here (its
    // endpoint): two QEMUs can share a UUID (a copied -uuid, a migration's source and destination).
    if (left.length === 0 && c.match === 'endpoint') for (const path of c.paths) removeQuietly(path);
  }
  return reported;
}
