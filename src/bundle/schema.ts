/**
 * The JSON sections of a bundle: the contract between capture (which writes them) and analysis (which
 * reads them). Every 64-bit quantity is a "0x..." hex string (see util/hex.ts); times are ISO-8601 UTC
 * strings. Readers must tolerate unknown extra fields (forward compatibility); writers never remove one
 * without a format major-version bump. docs/bundle-format.md documents each field for other readers.
 */
import type { Hex } from '../util/hex';

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
}

export type QuiescePolicy = 'stop-and-restore' | 'keep-stopped' | 'no-stop';
export type MemoryMethod = 'dump' | 'pmemsave' | 'none';

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
  host: { hostname: string; platform: string; nodeVersion: string };
  /** How the bundle came to be: a capture of a live QEMU, or a synthetic/hand-built one. */
  origin: 'capture' | 'watch' | 'synthetic';
  qemu: { version: string; package: string; capabilities: string[] } | null;
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
}

/** Registers of one vCPU. Names are canonical lowercase; composite registers use dotted names. */
export interface CpuState {
  /** QEMU cpu-index. */
  index: number;
  arch: 'x86_64' | 'aarch64' | string;
  /**
   * x86: "real" | "protected" | "long" (from CR0.PE and EFER.LMA, in that order).
   * aarch64: the PSTATE mode text in lowercase, e.g. "el1h", "el0t".
   */
  mode: string;
  /** aarch64 exception level 0-3; absent on x86. */
  exceptionLevel?: number;
  halted?: boolean;
  /**
   * Flat map name -> hex value. x86_64: rax..r15, rip, rflags, cs.selector / cs.base / cs.limit /
   * cs.flags (likewise ds es fs gs ss ldtr tr), gdt.base, gdt.limit, idt.base, idt.limit, cr0, cr2,
   * cr3, cr4, efer, dr0..dr7, fcw, fsw, ftw, mxcsr, st0..st7 (80-bit), xmm0..xmm15 (128-bit).
   * 32-bit values are zero-extended into the 64-bit names. aarch64: x0..x30, sp, pc, pstate.
   */
  registers: Record<string, Hex>;
  /** QEMU's `info registers` text for this vCPU, verbatim, so nothing parsed away is lost. */
  raw: string;
  /** From query-cpus-fast. */
  qomPath?: string;
  threadId?: number;
}

export interface CpusSection {
  arch: string;
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

export type Severity = 'critical' | 'error' | 'warning' | 'info';

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

/** One line of the QMP conversation, verbatim, in order. */
export interface TranscriptEntry {
  /** ISO time with microseconds where known. */
  at: string;
  /** tx: sent by vmpm; rx: received from QEMU (replies, events, greeting). */
  dir: 'tx' | 'rx';
  line: string;
}

export interface TranscriptSection {
  endpoint: string;
  entries: TranscriptEntry[];
}
