/**
 * Whether a capture may take guest RAM with a QEMU background snapshot (`--memory-method snapshot`,
 * the default for a running guest under stop-and-restore when nothing below stands in the way).
 *
 * A background snapshot RESUMES the guest when it is done (QEMU 7.2 starts the VM unconditionally),
 * so it is only for a guest vmpm itself stops: never for one that is paused, panicked, in io-error or
 * stopped by someone else, nor under --keep-stopped or --no-stop. QEMU refuses it with VFIO devices,
 * and capabilities that change the stream's format (compression, multifd, postcopy ...) would make it
 * unreadable here; a migration already running must not be disturbed.
 */
import type { MemoryMethod, QuiescePolicy, RunState } from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { VmpmError, describeError } from '../util/errors';
import { migrationOver, queryMigrate } from './migration-status';

export type RequestedMemoryMethod = MemoryMethod | 'auto';

/** Capabilities that change what the stream looks like (or need a peer): the snapshot needs them off. */
const STREAM_CHANGING = ['xbzrle', 'rdma-pin-all', 'compress', 'postcopy-ram', 'x-colo', 'block', 'multifd', 'dirty-bitmaps', 'x-ignore-shared', 'zero-copy-send', 'postcopy-preempt', 'mapped-ram', 'return-path', 'validate-uuid'];

export async function chooseMemoryMethod(
  client: QmpClient,
  requested: RequestedMemoryMethod,
  policy: QuiescePolicy,
  before: RunState,
  warnings: string[],
  /** A reason the caller already knows (e.g. QEMU is libvirt's). */
  veto?: string,
): Promise<MemoryMethod> {
  if (requested !== 'auto' && requested !== 'snapshot') return requested;
  const blocker = veto ?? (await snapshotBlocker(client, policy, before));
  if (blocker === undefined) return 'snapshot';
  if (requested === 'snapshot') throw new VmpmError(`--memory-method snapshot is not possible here: ${blocker}`);
  // Only worth saying when the guest is running: then the fallback costs it a long pause.
  if (before.running && policy === 'stop-and-restore') warnings.push(`no background snapshot (${blocker}): the guest stays paused while dump-guest-memory runs`);
  return 'dump';
}

/** Why a background snapshot cannot be used, or undefined when it can. */
export async function snapshotBlocker(client: QmpClient, policy: QuiescePolicy, before: RunState): Promise<string | undefined> {
  if (policy !== 'stop-and-restore') return `policy ${policy} (a background snapshot resumes the guest when it ends)`;
  if (!before.running) return `the guest is ${before.status}, not running (a background snapshot would resume it)`;
  try {
    const caps = await client.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities');
    if (!caps.some((c) => c.capability === 'background-snapshot')) return 'this QEMU has no background-snapshot migration capability';
    const on = caps.filter((c) => c.state && STREAM_CHANGING.includes(c.capability)).map((c) => c.capability);
    if (on.length > 0) return `migration capabilities ${on.join(', ')} are on`;
    const migration = await queryMigrate(client);
    if (!migrationOver(migration)) return `a migration is in progress (${migration.status})`;
    const vfio = await vfioDevices(client);
    if (vfio.length > 0) return `VFIO device ${vfio.join(', ')} attached (QEMU refuses background snapshots with VFIO)`;
  } catch (err) {
    return `could not check migration support: ${describeError(err)}`;
  }
  return undefined;
}

/** -device vfio-pci (named or not) shows up under /machine/peripheral(-anon) as child<vfio-...>. */
async function vfioDevices(client: QmpClient): Promise<string[]> {
  const found: string[] = [];
  for (const path of ['/machine/peripheral', '/machine/peripheral-anon']) {
    let children: Array<{ name: string; type: string }>;
    try {
      children = await client.execute<Array<{ name: string; type: string }>>('qom-list', { path });
    } catch {
      continue; // an older machine without that container
    }
    for (const c of children) if (/^child<vfio/.test(c.type)) found.push(c.name);
  }
  return found;
}
