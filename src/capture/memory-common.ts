/** What both memory methods need and return. */
import type { BundleWriter, MemoryRangeStats } from '../bundle';
import type { ElfNotesInfo } from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { VmpmError } from '../util/errors';
import { timerMs } from '../util/time';
import type { ActionLog } from './actions';
import type { FifoReaderOptions } from './fifo';
import type { SnapshotInfo } from './memory-snapshot';
import type { CaptureRange } from './plan';

export interface MemoryCaptureContext {
  client: QmpClient;
  writer: BundleWriter;
  plan: CaptureRange[];
  /** Private directory for the FIFOs. */
  fifoDir: string;
  actions: ActionLog;
  warnings: string[];
  signal?: AbortSignal;
  /** Bytes of guest RAM received so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** The session runs over libvirt (src/libvirt): said in the action's detail. */
  viaLibvirt?: boolean;
  /** Bound on the wait for QEMU to open a FIFO. */
  fifoOpenTimeoutMs?: number;
  /** Bound on QEMU's silence while a FIFO is open (a stopped or wedged QEMU). */
  fifoIdleTimeoutMs?: number;
  /** Bound on a background snapshot's setup (QEMU sends nothing meanwhile); default: snapshot-setup-watch.ts. */
  snapshotSetupTimeoutMs?: number;
}

/** FifoReader options from the context's bounds (left to the reader's defaults when unset). */
export function fifoReaderOptions(ctx: MemoryCaptureContext, onBytes?: (n: number) => void): FifoReaderOptions {
  const options: FifoReaderOptions = {};
  if (ctx.fifoOpenTimeoutMs !== undefined) options.openTimeoutMs = ctx.fifoOpenTimeoutMs;
  if (ctx.fifoIdleTimeoutMs !== undefined) options.idleTimeoutMs = ctx.fifoIdleTimeoutMs;
  if (onBytes) options.onBytes = onBytes;
  return options;
}

export interface CapturedRange extends MemoryRangeStats {
  name?: string;
}

export interface MemoryCaptureResult {
  ranges: CapturedRange[];
  /** PT_NOTE bytes of the ELF dump, verbatim, and the header fields needed to decode them (dump method only). */
  elfNotes?: { data: Buffer; info: ElfNotesInfo };
  /** What the background snapshot reported (snapshot method only). */
  snapshot?: SnapshotInfo;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new VmpmError('capture interrupted');
}

/** Generous per-command timeout for commands that stream `bytes` of RAM (>= 20 MiB/s plus a minute). */
export function streamingTimeoutMs(bytes: bigint): number {
  // Clamped: a memory map claiming tens of TiB would otherwise overflow Node's timer (fires at once).
  return timerMs(60_000 + Number(bytes / 20_000n));
}
