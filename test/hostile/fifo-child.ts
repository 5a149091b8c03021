/**
 * Child of fifo-open.test.ts: READERS FIFO readers at once whose writer never comes (more than libuv's
 * 4 threadpool threads), and ABORTED more that are closed (an abort) before any writer could come.
 * Each must fail within its bound; then the threadpool must still serve a file read at once, and the
 * process must end by itself (no process.exit: a thread stuck in open() would keep it alive).
 * Prints one JSON line.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FifoReader, createFifoDir, makeFifo } from '../../src/capture/fifo';

async function main(): Promise<void> {
  const readers = Number(process.argv[2] ?? 6);
  const aborted = Number(process.argv[3] ?? 4);
  const dir = await createFifoDir();
  const t0 = Date.now();
  const failures: string[] = [];
  const timed = Array.from({ length: readers }, async (_, i) => {
    const path = join(dir.path, `never-${i}.fifo`);
    await makeFifo(path);
    const reader = new FifoReader(path, { openTimeoutMs: 300 });
    try {
      for await (const c of reader.chunks()) void c;
      failures.push('ended without error');
    } catch (err) {
      failures.push((err as Error).message);
    }
  });
  const closed = Array.from({ length: aborted }, async (_, i) => {
    const path = join(dir.path, `abort-${i}.fifo`);
    await makeFifo(path);
    const reader = new FifoReader(path, { openTimeoutMs: 60_000 });
    const reading = (async () => {
      for await (const c of reader.chunks()) void c;
    })();
    await new Promise((r) => setTimeout(r, 50));
    await reader.close(); // what an abort listener does
    await reading.then(
      () => failures.push('ended without error'),
      (err: unknown) => failures.push((err as Error).message),
    );
  });
  await Promise.all([...timed, ...closed]);
  const failedMs = Date.now() - t0;
  const t1 = Date.now();
  await readFile(__filename); // needs a threadpool thread
  const readMs = Date.now() - t1;
  await dir.remove();
  process.stdout.write(`${JSON.stringify({ failures, failedMs, readMs })}\n`);
}

void main();
