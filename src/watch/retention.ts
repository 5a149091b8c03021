/**
 * `watch --max-bytes N` / `--max-bundles N`: keeps the out-dir within bounds by deleting the oldest
 * incident bundles first, each with the files vmpm keeps beside it (`.sig`, `.resumed.json`).
 *
 * What may be deleted is decided conservatively, because a bundle may be the only evidence of a crash:
 * - only files `vmpm watch` wrote: a regular file (not a symlink) with an incident bundle's name, that
 *   opens as a bundle and whose manifest says origin "watch". Anything else in the directory (a
 *   bundle from `vmpm capture`, a file of the user's, a damaged bundle, an unfinished `.partial`) is
 *   neither deleted nor counted;
 * - never the newest bundle of a VM that may still be stopped: it is what `vmpm state` calls
 *   failover-safe, and what a responder is about to read. It may go only when the watcher is connected
 *   to that VM and knows it is running again, or saw it resumed (the `.resumed.json` record). A VM the
 *   watcher is not connected to counts as stopped;
 * - the age of a bundle is its manifest's createdAt (file times can be changed by a copy).
 * When the limits cannot be met with what may be deleted, one warning says so; nothing else goes.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BundleReader, readJsonSection } from '../bundle';
import { describeError } from '../util/errors';
import { NIL_UUID, type VmIdentity } from './identity';
import { signaturePathOf } from './notify';
import { resumeMarkerPath } from './state';

export interface RetentionLimits {
  /** The watch's bundles (with their .sig and .resumed.json files) take at most this many bytes. */
  maxBytes?: number;
  /** At most this many of the watch's bundles. */
  maxBundles?: number;
}

export interface RetainedBundle {
  path: string;
  /** The bundle and the files beside it that go with it. */
  files: string[];
  bytes: number;
  createdAt: string;
  vm: VmIdentity;
}

export interface RetentionOutcome {
  kept: RetainedBundle[];
  deleted: Array<RetainedBundle & { why: string }>;
  /** Set when the limits are still exceeded (everything left is protected or could not be deleted). */
  overLimit?: string;
}

/** Names incidentBundlePath() gives: WHO-YYYYMMDDTHHMMSS.mmmZ-EVENT[-N].vmpm. */
const INCIDENT_NAME = /^[A-Za-z0-9._-]+-\d{8}T\d{6}\.\d{3}Z-[A-Za-z0-9._-]+\.vmpm$/;

/** The watch's bundles in `dir`, oldest first; anything that is not one is left out. */
export async function watchBundles(dir: string): Promise<RetainedBundle[]> {
  const out: RetainedBundle[] = [];
  for (const name of await readdir(dir)) {
    if (name.startsWith('.') || !INCIDENT_NAME.test(name)) continue;
    const path = join(dir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    let reader: BundleReader | undefined;
    try {
      reader = await BundleReader.open(path);
      const manifest = await readJsonSection(reader, 'manifest');
      if (manifest.origin !== 'watch') continue;
      const files = [path];
      let bytes = st.size;
      for (const extra of [signaturePathOf(path), resumeMarkerPath(path)]) {
        const x = await lstat(extra).catch(() => undefined);
        if (x?.isFile()) {
          files.push(extra);
          bytes += x.size;
        }
      }
      const uuid = manifest.vm.uuid && manifest.vm.uuid !== NIL_UUID ? manifest.vm.uuid : null;
      out.push({ path, files, bytes, createdAt: manifest.createdAt, vm: { name: manifest.vm.name, uuid } });
    } catch {
      // Not a bundle, or a damaged one: not provably the watch's, so never deleted.
    } finally {
      await reader?.close().catch(() => undefined);
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.path.localeCompare(b.path));
}

function vmKey(vm: VmIdentity): string {
  return `${vm.uuid ?? '-'}\u0000${vm.name ?? '-'}`;
}

/**
 * Deletes the oldest deletable bundles until the limits hold. `runningVms` are the identities the
 * watcher is connected to and knows are running now.
 */
export async function applyRetention(dir: string, limits: RetentionLimits, runningVms: VmIdentity[], log: (level: 'info' | 'warn', message: string) => void): Promise<RetentionOutcome> {
  const all = await watchBundles(dir);
  const running = new Set(runningVms.map(vmKey));
  // The newest bundle of each VM that may still be stopped is never deleted.
  const newest = new Map<string, RetainedBundle>();
  for (const b of all) newest.set(vmKey(b.vm), b);
  const protectedPaths = new Set<string>();
  for (const [key, b] of newest) if (!running.has(key) && !b.files.includes(resumeMarkerPath(b.path))) protectedPaths.add(b.path);

  const kept = [...all];
  const deleted: RetentionOutcome['deleted'] = [];
  const bytes = (): number => kept.reduce((s, b) => s + b.bytes, 0);
  const over = (): string | undefined => {
    if (limits.maxBundles !== undefined && kept.length > limits.maxBundles) return `${kept.length} bundles, over --max-bundles ${limits.maxBundles}`;
    if (limits.maxBytes !== undefined && bytes() > limits.maxBytes) return `${bytes()} bytes, over --max-bytes ${limits.maxBytes}`;
    return undefined;
  };
  const undeletable = new Set<string>();
  for (let why = over(); why !== undefined; why = over()) {
    const victim = kept.find((b) => !protectedPaths.has(b.path) && !undeletable.has(b.path));
    if (!victim) break;
    try {
      // The bundle last: a crash in between leaves a bundle without its signature, never a signature without its bundle.
      for (const f of [...victim.files].reverse()) await unlink(f);
      kept.splice(kept.indexOf(victim), 1);
      deleted.push({ ...victim, why });
      log('info', `retention: deleted ${victim.path} (${victim.bytes} bytes with ${victim.files.length - 1} file(s) beside it, captured ${victim.createdAt}, VM ${victim.vm.name ?? victim.vm.uuid ?? '-'}): ${why}`);
    } catch (err) {
      undeletable.add(victim.path);
      log('warn', `retention: could not delete ${victim.path}: ${describeError(err)}`);
    }
  }
  const still = over();
  if (still === undefined) return { kept, deleted };
  const held = kept.filter((b) => protectedPaths.has(b.path)).map((b) => b.path);
  const overLimit = `${still}; kept ${held.length} newest bundle(s) of VMs that may still be stopped (${held.join(', ')})${undeletable.size ? ` and ${undeletable.size} that could not be deleted` : ''}`;
  log('warn', `retention: ${overLimit}`);
  return { kept, deleted, overLimit };
}
