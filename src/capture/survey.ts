/**
 * The first phase of a capture, before anything changes: the run state vmpm found, the guest's UUID
 * (the claim names the guest by it from the first change on), how the session reaches QEMU, and the
 * memory method. For a background snapshot it also prepares everything the
 * snapshot needs (migration settings, the socket QEMU will connect to), so that none of it happens
 * while the guest is stopped.
 */
import type { ManifestTransport, MemoryMethod, RunState } from '../bundle/schema';
import type { CaptureRun } from './run';
import { queryStatusDetailed, readGuestUuid, type LibvirtStatus } from './metadata';
import { SnapshotPrep } from './memory-snapshot';
import { chooseMemoryMethod } from './snapshot-choice';

export interface Survey {
  before: RunState;
  transport: ManifestTransport;
  method: MemoryMethod;
  /** The guest's UUID (readGuestUuid), read before anything changed; the metadata's identity reuses it. */
  uuid: string | null;
  /** Set for method `snapshot`: restore() it whatever happens. */
  snapshot?: SnapshotPrep;
}

export async function survey(run: CaptureRun): Promise<Survey> {
  const { client, options, warnings } = run;
  const detailed = await queryStatusDetailed(client);
  const before = detailed.state;
  run.before = before;
  // Before any change (the snapshot's migration settings below, the stop later): a claim written for
  // the first change already names the guest by UUID, so a vmpm killed at that change is found by a
  // vmpm that reaches the same guest through the other transport (claim.ts).
  const uuid = await readGuestUuid(client, warnings);
  run.identify(uuid);
  const transport = transportOf(client.endpoint, detailed.libvirt, options.libvirtOwned);
  for (const w of detailed.libvirt?.readiness ?? []) warnings.push(`libvirt domain: ${w}`);
  // QEMU started with -S and never continued: nothing to stop or resume, but the reader should know
  // the guest never ran (RAM holds only what QEMU and its loaders put there).
  if (before.status === 'prelaunch') warnings.push('the guest has not started yet (QEMU -S, run state prelaunch): this is its state before its first instruction');
  // A migration behind libvirt's back would confuse it (as dump-guest-memory crashed it): no snapshot there.
  const veto =
    transport.kind === 'libvirt' ? 'QEMU is reached through libvirt' : options.libvirtOwned !== undefined ? `QEMU is run by libvirt (${options.libvirtOwned})` : undefined;
  let method = await chooseMemoryMethod(client, options.memory, run.policy, before, warnings, veto);
  if (options.libvirtOwned !== undefined && method === 'dump') {
    method = 'pmemsave';
    warnings.push(`QEMU is run by libvirt (${options.libvirtOwned}): memory via pmemsave; vmpm never sends it dump-guest-memory (it crashed libvirtd 9.0). --libvirt DOMAIN uses libvirt's own dump`);
  }
  run.method = method;
  const found: Survey = { before, transport, method, uuid };
  if (method === 'snapshot') {
    const bounds: { connectTimeoutMs?: number; idleTimeoutMs?: number } = {};
    if (options.fifoOpenTimeoutMs !== undefined) bounds.connectTimeoutMs = options.fifoOpenTimeoutMs;
    if (options.fifoIdleTimeoutMs !== undefined) bounds.idleTimeoutMs = options.fifoIdleTimeoutMs;
    found.snapshot = await SnapshotPrep.open(client, run.actions, warnings, (await run.fifoDir()).path, bounds);
  }
  return found;
}

/** How the session reached QEMU, for the manifest: libvirt (with its facts from query-status) or a QMP socket. */
function transportOf(endpoint: string, libvirt: LibvirtStatus | undefined, libvirtOwned: string | undefined): ManifestTransport {
  if (libvirt !== undefined) {
    const { domain, uuid, uri, libvirtVersion, qemuVersion } = libvirt;
    return { kind: 'libvirt', endpoint, libvirt: { domain, uuid, uri, libvirtVersion, qemuVersion } };
  }
  const t: ManifestTransport = { kind: 'qmp', endpoint };
  if (libvirtOwned !== undefined) t.libvirtOwned = libvirtOwned;
  return t;
}
