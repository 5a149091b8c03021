/**
 * Issue 13: opening a memory FIFO never ties up a libuv threadpool thread. The open used to be a
 * blocking open(O_RDONLY) in the threadpool, released on timeout by opening the write end ourselves;
 * with more readers than threads, a queued open had not started when it was "released", then blocked
 * for good once it ran: its reader's close() never returned, a thread stayed stuck, and the process
 * could not exit. Now the read end is opened with O_NONBLOCK (no thread, no wait).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runNode } from '../helpers/cli';

test('8 FIFOs whose writer never comes and 4 closed by an abort, in one process with 4 threadpool threads: each fails in its bound, the threadpool stays free, the process exits by itself', async () => {
  const r = await runNode(join(__dirname, 'fifo-child.js'), ['8', '4'], { env: { UV_THREADPOOL_SIZE: '4' }, timeoutMs: 30_000 }).done;
  assert.equal(r.timedOut, false, `the process did not end within 30 s (stuck FIFO opens?): ${r.stdout}${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { failures: string[]; failedMs: number; readMs: number };
  assert.equal(out.failures.length, 12);
  assert.equal(out.failures.filter((m) => /did not open the memory FIFO .* within 300 ms/.test(m)).length, 8, out.failures.join('\n'));
  assert.equal(out.failures.filter((m) => /closed/.test(m)).length, 4, out.failures.join('\n'));
  // No wall-clock bounds on failedMs/readMs (they include 12 mkfifo spawns on a shared machine): a
  // threadpool thread stuck in open() shows as the file read never finishing and the process never
  // exiting, which the 30 s kill above catches.
  process.stdout.write(`# failures after ${out.failedMs} ms, file read ${out.readMs} ms (loaded machine: not asserted)\n`);
});
