/** Builds the manifest section: identity, provenance, run states, policy, actions, timings, warnings. */
import { hostname } from 'node:os';
import { FORMAT_MAJOR, FORMAT_MINOR } from '../bundle';
import { compressionCodec } from '../bundle/codec';
import type { CaptureAction, ElfNotesInfo, ErrorRecord, Manifest, ManifestTransport, MemoryMethod, QuiescePolicy, RunState } from '../bundle/schema';
import { VMPM_VERSION } from '../version';
import type { Identity } from './metadata';
import { hexOrNull } from './metadata';
import { isConsistent } from './policy';

export interface ManifestInput {
  createdAt: string;
  origin: 'capture' | 'watch';
  label?: string;
  trigger?: ErrorRecord;
  capabilities: string[] | null;
  identity: Identity;
  cpuCount: number;
  ramSize: bigint | null;
  before: RunState;
  after: RunState;
  policy: QuiescePolicy;
  memory: MemoryMethod;
  actions: CaptureAction[];
  timings: Record<string, number>;
  warnings: string[];
  /** Set when the bundle has an `elf-notes` section. */
  elfNotes?: ElfNotesInfo;
  transport?: ManifestTransport;
}

function common(createdAt: string, origin: 'capture' | 'watch') {
  return {
    format: { major: FORMAT_MAJOR, minor: FORMAT_MINOR },
    vmpmVersion: VMPM_VERSION,
    createdAt,
    host: { hostname: hostname(), platform: `${process.platform}-${process.arch}`, nodeVersion: process.version },
    origin,
  };
}

export function buildManifest(m: ManifestInput): Manifest {
  const manifest: Manifest = {
    ...common(m.createdAt, m.origin),
    qemu: { version: m.identity.version, package: m.identity.package, capabilities: m.capabilities },
    vm: {
      name: m.identity.name,
      uuid: m.identity.uuid,
      arch: m.identity.arch,
      kvm: m.identity.kvm,
      cpuCount: m.cpuCount,
      ramSize: hexOrNull(m.ramSize),
    },
    runState: { before: m.before, after: m.after },
    policy: { quiesce: m.policy, memory: m.memory },
    consistent: isConsistent(m.policy, m.before),
    actions: m.actions,
    timings: m.timings,
    warnings: m.warnings,
  };
  if (m.label !== undefined) manifest.label = m.label;
  // Which zstd compressed the frames (native or portable path): provenance, and what a size or speed difference comes from.
  if (m.memory !== 'none') manifest.host.codec = compressionCodec().name;
  if (m.trigger) manifest.policy.trigger = m.trigger;
  if (m.elfNotes) manifest.elfNotes = m.elfNotes;
  if (m.transport) manifest.transport = m.transport;
  return manifest;
}

/** The manifest of an abandoned capture kept with --keep-partial: says PARTIAL first, claims nothing it does not know. */
export function partialManifest(p: {
  createdAt: string;
  origin: 'capture' | 'watch';
  label?: string;
  reason: string;
  before: RunState | undefined;
  policy: QuiescePolicy;
  memory: MemoryMethod;
  actions: CaptureAction[];
  warnings: string[];
}): Manifest {
  const unknown: RunState = { status: 'unknown', running: false, at: new Date().toISOString() };
  const manifest: Manifest = {
    ...common(p.createdAt, p.origin),
    qemu: null,
    vm: { name: null, uuid: null, arch: 'unknown', kvm: null, cpuCount: 0, ramSize: null },
    runState: { before: p.before ?? unknown, after: unknown },
    policy: { quiesce: p.policy, memory: p.memory },
    consistent: false,
    actions: p.actions,
    timings: {},
    warnings: [`PARTIAL CAPTURE: ${p.reason}`, ...p.warnings],
  };
  if (p.label !== undefined) manifest.label = p.label;
  return manifest;
}
