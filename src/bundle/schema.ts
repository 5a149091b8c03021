/**
 * The JSON sections of a bundle: the contract between capture (which writes them) and analysis (which
 * reads them). Every 64-bit quantity is a "0x..." hex string (see util/hex.ts); times are ISO-8601 UTC
 * strings. Readers must tolerate unknown extra fields (forward compatibility); writers never remove one
 * without a format major-version bump. docs/bundle-format.md documents each field for other readers.
 */
import type { CpuState } from '../arch/cpu-state';
import type { Hex } from '../util/hex';
import type { Severity } from '../util/severity';
import type { TranscriptEntry } from '../util/transcript';

/** Well-known section names. Attachments are `attachment/<file name>` (raw). */
export const SECTION = {
  manifest: 'manifest',
  cpus: 'cpus',
  memmap: 'memmap',
  block: 'block',
  errors: 'errors',
  events: 'events',
  transcript: 'qmp-transcript',
  /** Raw: the PT_NOTE segment(s) of a `dump-guest-memory` ELF, verbatim. */
  elfNotes: 'elf-notes',
  /** Raw: the guest's VMCOREINFO note text, when the guest provides one (-device vmcoreinfo). */
  vmcoreinfo: 'vmcoreinfo',
  /** JSON: what a background snapshot (memory method snapshot) reported, and the vCPU state in its stream. */
  snapshot: 'snapshot',
} as const;

export const ATTACHMENT_PREFIX = 'attachment/';

/** QEMU's run state as reported by `query-status`, plus the reason vmpm learnt from events. */
export interface RunState {
  /** query-status `status`: running, paused, guest-panicked, io-error, prelaunch, shutdown, ... */
  status: string;
  running: boolean;
  /** Why it is in that state when known (e.g. the GUEST_PANICKED or BLOCK_IO_ERROR that stopped it). */
  reason?: string;
  /** When it was observed (ISO). */
  at: string;
  /** libvirt's domain state and reason as virsh prints them ("crashed (panicked)"), when reached through libvirt. */
  libvirt?: string;
}

/** How vmpm reached QEMU: its own monitor socket, or libvirt (virsh). */
export interface ManifestTransport {
  kind: 'qmp' | 'libvirt';
  /** "unix:/run/vm1.qmp", "libvirt:web1" or "libvirt:web1@qemu+ssh://host/system". */
  endpoint: string;
  /** The libvirt domain and the versions libvirt reported (kind libvirt). */
  libvirt?: { domain: string; uuid: string; uri: string | null; libvirtVersion: string | null; qemuVersion: string | null };
  /** Set when a plain QMP socket led to a QEMU that libvirt runs: the evidence (no dump-guest-memory was sent). */
  libvirtOwned?: string;
}

export type QuiescePolicy = 'stop-and-restore' | 'keep-stopped' | 'no-stop';
export type MemoryMethod = 'dump' | 'pmemsave' | 'snapshot' | 'none';

/** One state change or heavy operation vmpm performed on the guest, in order. */
export interface CaptureAction {
  /** ISO time the action was sent. */
  at: string;
  /** QMP command (stop, cont, dump-guest-memory, pmemsave, human-monitor-command ...) or a vmpm step. */
  action: string;
  detail?: string;
  durationMs: number;
  result: 'ok' | 'error';
  error?: string;
}

export interface Manifest {
  /** Bundle format version written (same as the header; repeated here for JSON-only consumers). */
  format: { major: number; minor: number };
  vmpmVersion: string;
  createdAt: string;
  label?: string;
  /** `codec`: the zstd compressor that wrote the memory frames (codec.ts), absent without memory. */
  host: { hostname: string; platform: string; nodeVersion: string; codec?: string };
  /** How the bundle came to be: a capture of a live QEMU, or a synthetic/hand-built one. */
  origin: 'capture' | 'watch' | 'synthetic' | 'import';
  /** `capabilities` is null when the QMP greeting was not seen (libvirt reads it itself). */
  qemu: { version: string; package: string; capabilities: string[] | null } | null;
  vm: {
    name: string | null;
    uuid: string | null;
    /** query-target arch: x86_64, aarch64, ... */
    arch: string;
    kvm: { enabled: boolean; present: boolean } | null;
    cpuCount: number;
    /** Total RAM size in bytes (query-memory-size-summary base + plugged), as hex. */
    ramSize: Hex | null;
  };
  runState: { before: RunState; after: RunState };
  policy: {
    quiesce: QuiescePolicy;
    memory: MemoryMethod;
    /** The serious event that made `vmpm watch` capture, if any. */
    trigger?: ErrorRecord;
  };
  /** False when memory and registers were taken from a running guest (--no-stop): they may disagree. */
  consistent: boolean;
  actions: CaptureAction[];
  /** Milliseconds per phase: connect, stop, metadata, memory, total, ... */
  timings: Record<string, number>;
  warnings: string[];
  /**
   * How to decode the raw `elf-notes` section: the ELF header fields of the dump its notes came from.
   * Present exactly when that section is (bundles without it, or written before 0.1 added this, lack it).
   */
  elfNotes?: ElfNotesInfo;
  /** How vmpm reached QEMU (bundles written before libvirt support lack it: a QMP socket). */
  transport?: ManifestTransport;
  /** origin 'import' (`vmpm import`): the dump file the bundle was made from. */
  import?: ImportProvenance;
}

/** Where an imported bundle came from (docs/bundle-format.md, "Imported bundles"). */
export interface ImportProvenance {
  /** elf, kdump (makedumpfile's kdump-compressed) or kdump-flattened (makedumpfile -F / QEMU 7.2's kdump-*). */
  format: 'elf' | 'kdump' | 'kdump-flattened';
  /** The dump file as given on the command line. */
  path: string;
  size: number;
  /** SHA-256 of the whole dump file (hex). */
  sha256: string;
  /** Format facts: e_machine, program header offset, kdump header fields, codecs seen ... */
  details: Record<string, unknown>;
}

/** The ELF identity of the dump an `elf-notes` section was cut from (NT_PRSTATUS layout depends on it). */
export interface ElfNotesInfo {
  /** e_machine: 3 EM_386, 62 EM_X86_64, 183 EM_AARCH64 (EM_386 and EM_X86_64 lay out NT_PRSTATUS differently). */
  machine: number;
  /** EI_CLASS as a word size. */
  class: 32 | 64;
  /** EI_DATA. */
  byteOrder: 'little' | 'big';
}

/** Registers of one vCPU: declared by the arch layer, which parses them (re-exported for bundle readers). */
export type { CpuState };

export interface CpusSection {
  arch: string;
  /**
   * Where the registers were read: 'info-registers' (QEMU's HMP text, inside vmpm's stop) or
   * 'migration-stream' (an x86 background snapshot's `cpu` device sections, inside QEMU's own stop).
   * Absent in bundles written before it was recorded, and in imported ones: `info-registers` for a
   * capture, the dump's notes for an import.
   */
  source?: 'info-registers' | 'migration-stream';
  cpus: CpuState[];
}

/** One entry of the flat view of the system address space (`info mtree -f`). */
export interface MemRegion {
  name: string;
  /** ram, rom, ram-device, romd, io (mmio), i/o ... as QEMU prints it. */
  kind: string;
  start: Hex;
  /** Exclusive. */
  end: Hex;
  /** Offset into the backing RAM block (`@...` in mtree), when printed. */
  offset?: Hex;
  priority?: number;
  /** True when every byte of the region is covered by captured memory ranges in this bundle. */
  captured: boolean;
}

export interface MemmapSection {
  regions: MemRegion[];
  /** query-memory-size-summary, hex. */
  sizeSummary: { baseMemory: Hex; pluggedMemory: Hex | null } | null;
  /** query-memdev and query-memory-devices, verbatim. */
  memdevs: unknown[];
  memoryDevices: unknown[];
  /** `info mtree -f` text verbatim. */
  raw: string;
}

export interface BlockDevice {
  device: string;
  qdev?: string;
  nodeName?: string;
  /** ok, failed, nospace, or absent when QEMU does not track it. */
  ioStatus?: string;
  file?: string;
  driver?: string;
  readOnly?: boolean;
  /** The query-block entry verbatim. */
  raw: unknown;
}

export interface BlockSection {
  devices: BlockDevice[];
  /** query-blockstats verbatim. */
  stats: unknown[];
}

export type { Severity };

/** A normalised error record: something that went wrong in or around the guest. */
export interface ErrorRecord {
  /** ISO time: QEMU's event timestamp when there is one, else when vmpm observed it. */
  time: string;
  /** event: a QMP event; run-state: query-status reason; io-status: a block device's io-status. */
  source: 'event' | 'run-state' | 'io-status';
  /**
   * guest-panicked, guest-crashloaded, block-io-error, memory-failure, watchdog, reset, shutdown,
   * io-error (run state), block-io-status, ...
   */
  kind: string;
  severity: Severity;
  /** One human line: "GUEST_PANICKED (action pause)", "BLOCK_IO_ERROR on ide1-hd0: read Input/output error". */
  summary: string;
  device?: string;
  /** The QMP event, status or block entry it was derived from, verbatim. */
  raw: unknown;
}

export interface ErrorsSection {
  records: ErrorRecord[];
}

/** A QMP event as received. */
export interface JournalEvent {
  event: string;
  data?: unknown;
  /** QEMU's host-clock timestamp. */
  timestamp: { seconds: number; microseconds: number };
  /** Same instant as ISO, for humans. */
  time: string;
  /** When vmpm received it (ISO). */
  receivedAt: string;
}

export interface EventsSection {
  events: JournalEvent[];
  /** Events dropped from a bounded rolling journal before these (watch mode). */
  dropped: number;
}

/** One line of the QMP conversation, verbatim, in order (declared in util, shared with qmp). */
export type { TranscriptEntry };

export interface TranscriptSection {
  endpoint: string;
  entries: TranscriptEntry[];
}
