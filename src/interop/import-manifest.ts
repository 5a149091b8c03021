/**
 * The manifest of an imported bundle. A dump file says nothing about QEMU, the VM's name, its run
 * state or how it was stopped: those fields say "unknown" or null instead of guessing, and
 * `import` records the source file, its SHA-256 and its format (docs/bundle-format.md).
 */
import { hostname } from 'node:os';
import { FORMAT_MAJOR, FORMAT_MINOR, type ImportProvenance, type Manifest } from '../bundle';
import { toHex } from '../util/hex';
import { VMPM_VERSION } from '../version';

export function importManifest(m: {
  createdAt: string;
  arch: string;
  cpuCount: number;
  capturedBytes: bigint;
  timings: Record<string, number>;
  warnings: string[];
  provenance: ImportProvenance;
  /** e_machine of the notes kept in the elf-notes section, when there is one. */
  elfNotesMachine?: number;
  /** The zstd path that compressed the memory frames (BundleWriter.codec), as captures record it. */
  codec: string;
}): Manifest {
  const unknown = { status: 'unknown', running: false, at: m.createdAt, reason: `imported from ${m.provenance.format} dump ${m.provenance.path}` };
  const manifest: Manifest = {
    format: { major: FORMAT_MAJOR, minor: FORMAT_MINOR },
    vmpmVersion: VMPM_VERSION,
    createdAt: m.createdAt,
    host: { hostname: hostname(), platform: `${process.platform}-${process.arch}`, nodeVersion: process.version },
    origin: 'import',
    qemu: null,
    vm: { name: null, uuid: null, arch: m.arch, kvm: null, cpuCount: m.cpuCount, ramSize: m.capturedBytes > 0n ? toHex(m.capturedBytes) : null },
    runState: { before: unknown, after: { ...unknown } },
    // A dump is taken from a stopped guest (QEMU pauses it while dumping; kdump runs after the crash).
    policy: { quiesce: 'keep-stopped', memory: 'dump' },
    consistent: true,
    actions: [],
    timings: m.timings,
    warnings: m.warnings,
    import: m.provenance,
  };
  // As in a capture: which zstd wrote the frames, when there is memory.
  if (m.capturedBytes > 0n) manifest.host.codec = m.codec;
  // kdump files have no e_machine: the one inferred from the notes stands in (they are ELF64 LE notes).
  if (m.elfNotesMachine !== undefined) manifest.elfNotes = { machine: m.elfNotesMachine, class: 64, byteOrder: 'little' };
  return manifest;
}
