import { toHex, type Hex } from '../util/hex';
import { describeError } from '../util/errors';
import type { Manifest, ManifestTransport, RunState } from '../bundle/schema';
import type { AnalysisBundle } from './source';
import { loadSections, type BundleSections } from './sections';
import { custodyStatus, type CustodyStatus } from './custody';
import { registerSource, type RegisterSource } from './regs';

/** `vmpm info --json`: one object answering "what happened and what do I have". */
export interface InfoModel {
  file: string;
  fileSize: number;
  format: { major: number; minor: number };
  /** ok: every digest checked; failed: see problems; not-checked: --no-verify. */
  integrity: { status: 'ok' | 'failed' | 'not-checked'; problems: string[] };
  sha256: string | null;
  vm: { name: string | null; uuid: string | null; arch: string | null; cpuCount: number | null; ramSize: Hex | null; kvm: boolean | null };
  qemu: { version: string; package: string } | null;
  runState: { before: RunState | null; after: RunState | null };
  capture: {
    createdAt: string | null;
    origin: string | null;
    label: string | null;
    vmpmVersion: string | null;
    host: string | null;
    /** The zstd compressor that wrote the memory frames (manifest.host.codec). */
    codec: string | null;
    quiesce: string | null;
    memoryMethod: string | null;
    trigger: string | null;
    consistent: boolean | null;
    totalMs: number | null;
    warnings: string[];
    /**
     * How vmpm reached QEMU: its own QMP socket or a libvirt domain (manifest `transport`). Null when
     * the bundle does not say: synthetic and imported bundles, and captures written before libvirt support
     * (those were always over a QMP socket, endpoint not recorded).
     */
    transport: ManifestTransport | null;
  };
  cpus: Array<{ index: number; arch: string; mode: string; exceptionLevel: number | null; halted: boolean | null; pc: Hex | null }>;
  /** Where the registers came from (as `vmpm regs` says); null when the bundle has none. */
  registerSource: RegisterSource | null;
  memory: {
    ranges: Array<{ start: Hex; end: Hex; name: string | null; pages: number; zeroPages: number }>;
    capturedBytes: Hex;
    pages: number;
    zeroPages: number;
    dataPages: number;
    uniquePages: number;
    frames: number;
    compressedBytes: number;
  };
  /**
   * `sourcesByKind` says where each kind's records came from: one panic is usually recorded twice, as
   * the GUEST_PANICKED event and as the guest-panicked run state, which is one incident, not two.
   */
  errors: { total: number; byKind: Record<string, number>; bySeverity: Record<string, number>; sourcesByKind: Record<string, string[]> };
  events: { total: number; dropped: number };
  sections: Array<{ name: string; type: string; length: number }>;
  /** Slim (no memory contents) or redacted (bytes erased): what, by whom, from which bundle. */
  custody: CustodyStatus;
}

/** The instruction pointer of a vCPU, whatever the architecture calls it. */
export function instructionPointer(registers: Record<string, string>): Hex | null {
  const v = registers.rip ?? registers.pc ?? registers.eip;
  return typeof v === 'string' && v.startsWith('0x') ? (v as Hex) : null;
}

export async function buildInfo(
  bundle: AnalysisBundle,
  options: { verify?: boolean; sections?: BundleSections } = {},
): Promise<InfoModel> {
  const s = options.sections ?? (await loadSections(bundle));
  const { integrity, sha256 } = await integrityOf(bundle, options.verify !== false);
  const m: Manifest | null = s.manifest;
  return {
    file: bundle.path,
    fileSize: bundle.fileSize,
    format: bundle.version,
    integrity,
    sha256,
    vm: {
      name: m?.vm.name ?? null,
      uuid: m?.vm.uuid ?? null,
      arch: m?.vm.arch ?? s.cpus?.arch ?? null,
      cpuCount: m?.vm.cpuCount ?? s.cpus?.cpus.length ?? null,
      ramSize: m?.vm.ramSize ?? null,
      kvm: m?.vm.kvm ? m.vm.kvm.enabled : null,
    },
    qemu: m?.qemu ? { version: m.qemu.version, package: m.qemu.package } : null,
    runState: { before: m?.runState.before ?? null, after: m?.runState.after ?? null },
    capture: captureFacts(m),
    cpus: (s.cpus?.cpus ?? []).map((c) => ({
      index: c.index,
      arch: c.arch,
      mode: c.mode,
      exceptionLevel: c.exceptionLevel ?? null,
      halted: c.halted ?? null,
      pc: instructionPointer(c.registers),
    })),
    registerSource: registerSource(s.cpus, m),
    memory: memoryFacts(bundle),
    errors: errorCounts(s.errors?.records ?? []),
    events: { total: s.events?.events.length ?? 0, dropped: s.events?.dropped ?? 0 },
    sections: bundle.sections().map((x) => ({ name: x.name, type: x.type, length: x.length })),
    custody: await custodyStatus(bundle),
  };
}

/** Every digest checked (or only the file's SHA-256 with verify false); a verification that cannot even run is still a status. */
async function integrityOf(bundle: AnalysisBundle, verify: boolean): Promise<Pick<InfoModel, 'integrity' | 'sha256'>> {
  if (!verify) return { integrity: { status: 'not-checked', problems: [] }, sha256: await bundle.sha256() };
  try {
    const v = await bundle.verify();
    return { integrity: { status: v.ok ? 'ok' : 'failed', problems: v.problems }, sha256: v.sha256 };
  } catch (err) {
    // A truncated frame or an unreadable file: reported as a failed check, not a crash.
    return { integrity: { status: 'failed', problems: [describeError(err)] }, sha256: null };
  }
}

function captureFacts(m: Manifest | null): InfoModel['capture'] {
  return {
    createdAt: m?.createdAt ?? null,
    origin: m?.origin ?? null,
    label: m?.label ?? null,
    vmpmVersion: m?.vmpmVersion ?? null,
    host: m?.host.hostname ?? null,
    codec: m?.host.codec ?? null,
    quiesce: m?.policy.quiesce ?? null,
    memoryMethod: m?.policy.memory ?? null,
    trigger: m?.policy.trigger?.summary ?? null,
    consistent: m ? m.consistent : null,
    totalMs: typeof m?.timings?.total === 'number' ? m.timings.total : null,
    warnings: m?.warnings ?? [],
    transport: m?.transport ?? null,
  };
}

function memoryFacts(bundle: AnalysisBundle): InfoModel['memory'] {
  const stats = bundle.stats();
  return {
    ranges: bundle.ranges().map((r) => ({
      start: toHex(r.start),
      end: toHex(r.start + r.length),
      name: r.name ?? null,
      pages: r.pages,
      zeroPages: r.zeroPages,
    })),
    capturedBytes: toHex(stats.capturedBytes),
    pages: stats.pages,
    zeroPages: stats.zeroPages,
    dataPages: stats.dataPages,
    uniquePages: stats.uniquePages,
    frames: stats.frames,
    compressedBytes: stats.compressedBytes,
  };
}

/** Error records by kind and severity, and where each kind came from (one panic is usually two records). */
function errorCounts(records: ReadonlyArray<{ kind: string; severity: string; source: string }>): InfoModel['errors'] {
  const byKind: Record<string, number> = {};
  const bySeverity: Record<string, number> = {};
  const sourcesByKind: Record<string, string[]> = {};
  for (const r of records) {
    byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
    const sources = (sourcesByKind[r.kind] ??= []);
    if (!sources.includes(r.source)) sources.push(r.source);
    bySeverity[r.severity] = (bySeverity[r.severity] ?? 0) + 1;
  }
  return { total: records.length, byKind, bySeverity, sourcesByKind };
}

/**
 * The transport in one phrase: "QMP socket unix:/run/vm1.qmp", "libvirt domain web1 (qemu:///system,
 * libvirt 9.0.0)". A QMP socket to a QEMU that libvirt runs says so (vmpm then avoids dump-guest-memory).
 */
export function transportLine(t: ManifestTransport): string {
  if (t.kind === 'libvirt') {
    const l = t.libvirt;
    const facts = [l?.uri ?? null, l?.libvirtVersion ? `libvirt ${l.libvirtVersion}` : null].filter((x): x is string => x !== null);
    return `libvirt domain ${l?.domain ?? t.endpoint}${facts.length ? ` (${facts.join(', ')})` : ''}`;
  }
  return `QMP socket ${t.endpoint}${t.libvirtOwned !== undefined ? ` (QEMU run by libvirt: ${t.libvirtOwned})` : ''}`;
}
