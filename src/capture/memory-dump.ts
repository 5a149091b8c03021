/**
 * Memory method `dump`: QEMU's `dump-guest-memory` (ELF, paging off, detached) written into a FIFO and
 * parsed as it streams. PT_NOTE segments are kept verbatim (per-vCPU NT_PRSTATUS, QEMU CPU state,
 * VMCOREINFO); each PT_LOAD is cut to the planned RAM ranges and fed page by page into the bundle at its
 * guest-physical address (p_paddr). Loads outside the plan (pc.bios at 0xfffc0000) are read and dropped.
 *
 * Completion needs both the end of the stream and DUMP_COMPLETED: QEMU 7.2 emits the event before it
 * closes the file, and a failed dump may close the file early with a complete-looking stream.
 */
import { join } from 'node:path';
import type { MemoryRangeWriter } from '../bundle';
import type { QmpEvent } from '../qmp';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { timerMs } from '../util/time';
import { readElfCoreStream, type ElfHeaderInfo, type ElfSegment } from '../formats/elf';
import { FifoReader, makeFifo } from './fifo';
import {
  fifoReaderOptions,
  throwIfAborted,
  streamingTimeoutMs,
  type CapturedRange,
  type MemoryCaptureContext,
  type MemoryCaptureResult,
} from './memory-common';
import { intersectPlan, totalBytes } from './plan';

/** After the stream ends, how long DUMP_COMPLETED may take to arrive. */
const COMPLETION_WAIT_MS = 15_000;

interface OpenRange {
  planIndex: number;
  next: bigint;
  name: string;
  writer: MemoryRangeWriter;
}

/**
 * PT_LOAD data into the planned RAM ranges: each load is cut to the plan, and each contiguous piece goes
 * to one range writer (a piece continuing the previous one extends it).
 */
class LoadsIntoRanges {
  readonly ranges: CapturedRange[] = [];
  private open: OpenRange | undefined;
  private done = 0;

  constructor(
    private readonly ctx: MemoryCaptureContext,
    private readonly total: number,
  ) {}

  /** Ends the range in progress (its stats join `ranges`). */
  async closeOpen(): Promise<void> {
    if (!this.open) return;
    const stats = await this.open.writer.end();
    this.ranges.push({ ...stats, name: this.open.name });
    this.open = undefined;
  }

  private async rangeAt(planIndex: number, addr: bigint, name: string): Promise<OpenRange> {
    if (this.open && this.open.planIndex === planIndex && this.open.next === addr) return this.open;
    await this.closeOpen();
    this.open = { planIndex, next: addr, name, writer: this.ctx.writer.beginMemoryRange(addr, { name }) };
    return this.open;
  }

  async onLoad(seg: ElfSegment, data: AsyncIterable<Buffer>): Promise<void> {
    const pieces = intersectPlan(this.ctx.plan, seg.paddr, seg.paddr + BigInt(seg.filesz));
    let addr = seg.paddr;
    let pi = 0;
    for await (const chunk of data) {
      throwIfAborted(this.ctx.signal);
      let off = 0;
      while (off < chunk.length) {
        const here = addr + BigInt(off);
        while (pi < pieces.length && pieces[pi]!.end <= here) pi++;
        const piece = pieces[pi];
        if (!piece) break; // the rest of this chunk is outside the plan
        if (here < piece.start) {
          off += Number(min(piece.start - here, BigInt(chunk.length - off)));
          continue;
        }
        const n = Number(min(piece.end - here, BigInt(chunk.length - off)));
        const target = await this.rangeAt(piece.planIndex, here, piece.name);
        await target.writer.write(chunk.subarray(off, off + n));
        target.next = here + BigInt(n);
        this.done += n;
        off += n;
      }
      addr += BigInt(chunk.length);
      this.ctx.onProgress?.(this.done, this.total);
    }
  }
}

export async function captureWithDump(ctx: MemoryCaptureContext): Promise<MemoryCaptureResult> {
  const fifo = join(ctx.fifoDir, 'memory.elf');
  await makeFifo(fifo);
  const planned = totalBytes(ctx.plan);
  const reader = new FifoReader(fifo, fifoReaderOptions(ctx));

  let completed: (e: QmpEvent) => void = () => undefined;
  const completion = new Promise<QmpEvent>((resolve) => (completed = resolve));
  const unsubscribe = ctx.client.onEvent((e) => e.event === 'DUMP_COMPLETED' && completed(e), { replay: false });

  const loads = new LoadsIntoRanges(ctx, Number(planned));
  const notes: Buffer[] = [];
  // Closing our end makes QEMU's next write fail, which ends a dump that is stuck on a full pipe.
  const abortListener = (): void => void reader.close();
  ctx.signal?.addEventListener('abort', abortListener);
  const parsing = readElfCoreStream(reader.chunks(), {
    onNote: (_seg, data) => {
      notes.push(data);
    },
    onLoad: (seg, data) => loads.onLoad(seg, data),
  }, { streamName: 'dump-guest-memory ELF stream', truncationHint: 'did QEMU stop writing?' });
  parsing.catch(() => undefined); // observed below

  try {
    // Over libvirt the transport turns this into `virsh dump --memory-only`: libvirt runs the dump in its own job.
    const how = ctx.viaLibvirt ? 'through libvirt (virsh dump --memory-only --format elf)' : 'ELF, paging off, detached';
    await ctx.actions.run('dump-guest-memory', `${how}, into a FIFO (${toHex(planned)} bytes of RAM planned)`, () =>
      ctx.client.execute('dump-guest-memory', { paging: false, protocol: `file:${fifo}`, detach: true }, { timeoutMs: streamingTimeoutMs(planned) }),
    );
  } catch (err) {
    ctx.signal?.removeEventListener('abort', abortListener);
    await reader.close();
    await parsing.catch(() => undefined);
    unsubscribe();
    throw err;
  }

  try {
    const header = await parsing;
    await loads.closeOpen();
    await dumpCompleted(completion);
    return dumpResult(ctx, loads.ranges, notes, header);
  } finally {
    ctx.signal?.removeEventListener('abort', abortListener);
    unsubscribe();
    await reader.close();
    // After a failure, end the range in progress so a --keep-partial bundle keeps what arrived.
    await loads.closeOpen().catch(() => undefined);
  }
}

/** DUMP_COMPLETED, within COMPLETION_WAIT_MS of the stream's end, saying the dump succeeded. */
async function dumpCompleted(completion: Promise<QmpEvent>): Promise<void> {
  const event = await withTimeout(completion, COMPLETION_WAIT_MS, 'QEMU did not report DUMP_COMPLETED after the dump stream ended');
  const data = (event.data ?? {}) as { result?: { status?: string }; error?: string };
  if (data.error !== undefined || data.result?.status !== 'completed') {
    throw new VmpmError(`dump-guest-memory failed: ${data.error ?? `status ${data.result?.status ?? 'unknown'}`}`);
  }
}

/** The ranges captured (a planned range the dump did not fully hold is a warning) and the notes with the ELF facts to decode them. */
function dumpResult(ctx: MemoryCaptureContext, ranges: CapturedRange[], notes: Buffer[], header: ElfHeaderInfo): MemoryCaptureResult {
  const missing = ctx.plan.filter((p) => !ranges.some((r) => r.start <= p.start && p.end <= r.start + r.length));
  for (const m of missing) ctx.warnings.push(`RAM range ${toHex(m.start)}-${toHex(m.end - 1n)} (${m.name}) is not fully in QEMU's dump`);
  const result: MemoryCaptureResult = { ranges };
  if (notes.length > 0) {
    const info = { machine: header.machine, class: header.class, byteOrder: header.littleEndian ? 'little' : 'big' } as const;
    result.elfNotes = { data: Buffer.concat(notes), info };
  }
  return result;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new VmpmError(message)), timerMs(ms))))]);
  } finally {
    clearTimeout(timer);
  }
}
