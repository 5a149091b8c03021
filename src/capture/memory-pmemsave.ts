/**
 * Memory method `pmemsave`: one `pmemsave` per planned RAM range, each written into its own FIFO and
 * streamed into the bundle at the range's guest-physical address. pmemsave reads through the system
 * address space, so the offset in its output is the physical address (unlike a RAM-block file).
 * QEMU runs it synchronously in its main loop: the QMP reply arrives after the last byte.
 */
import { join } from 'node:path';
import { toHex } from '../util/hex';
import { FifoReader, makeFifo } from './fifo';
import {
  fifoReaderOptions,
  throwIfAborted,
  streamingTimeoutMs,
  type CapturedRange,
  type MemoryCaptureContext,
  type MemoryCaptureResult,
} from './memory-common';
import { totalBytes } from './plan';

export async function captureWithPmemsave(ctx: MemoryCaptureContext): Promise<MemoryCaptureResult> {
  const total = Number(totalBytes(ctx.plan));
  let before = 0;
  const ranges: CapturedRange[] = [];
  for (const [i, range] of ctx.plan.entries()) {
    throwIfAborted(ctx.signal);
    const fifo = join(ctx.fifoDir, `ram-${i}.raw`);
    await makeFifo(fifo);
    const size = range.end - range.start;
    const reader = new FifoReader(
      fifo,
      fifoReaderOptions(ctx, (n) => ctx.onProgress?.(before + n, total)),
    );
    const abortListener = (): void => void reader.close();
    ctx.signal?.addEventListener('abort', abortListener);
    try {
      const streaming = ctx.writer.addMemoryRange(range.start, reader.chunks(), { name: range.name, expectedLength: size });
      streaming.catch(() => undefined); // observed below
      try {
        // A stream that fails first (QEMU never opened the FIFO, or stopped writing) fails the range now,
        // not when pmemsave's reply (which may never come) times out.
        const streamFailed = streaming.then(() => new Promise<never>(() => undefined));
        await Promise.race([
          ctx.actions.run('pmemsave', `${toHex(range.start)}-${toHex(range.end - 1n)} (${range.name}) into a FIFO`, () =>
            ctx.client.execute('pmemsave', { val: safeInt(range.start), size: safeInt(size), filename: fifo }, { timeoutMs: streamingTimeoutMs(size) }),
          ),
          streamFailed,
        ]);
      } catch (err) {
        await reader.close();
        await streaming.catch(() => undefined);
        throw err;
      }
      const stats = await streaming;
      throwIfAborted(ctx.signal);
      ranges.push({ ...stats, name: range.name });
      before += Number(size);
    } finally {
      ctx.signal?.removeEventListener('abort', abortListener);
      await reader.close();
    }
  }
  return { ranges };
}

/** QMP integers: numbers while exact, bigint (sent as a bare JSON integer) beyond 2^53. */
function safeInt(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}
