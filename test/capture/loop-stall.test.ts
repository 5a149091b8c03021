/**
 * A stalled event loop is not a stalled stream. Node runs expired timers before pending I/O, so when
 * vmpm's own loop is blocked longer than an idle bound (a long synchronous step, a loaded machine),
 * the bound's timer fires first with data already waiting in the kernel. The bounds yield once
 * (setImmediate) before calling the stream silent.
 *
 * Each test arms a bound, writes data (a synchronous write: it is in the kernel at once), then blocks
 * the loop synchronously for three times the bound. The block is in a setImmediate callback, so the
 * next loop iteration starts with the timers: before the fix the bound fired before the data was
 * read, every time. Nothing here depends on how fast the machine is: the block is at least as long
 * as it says, and the data is already written when it starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants as fsConstants, openSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { FifoReader, createFifoDir, makeFifo } from '../../src/capture/fifo';
import { MigrationSocket } from '../../src/capture/migration-socket';
import { blockLoop, checkPhase } from '../helpers/loop-stall';

const BOUND_MS = 500;

/**
 * Arms the idle bound (a pending chunks().next() from the check phase), writes, then blocks the loop
 * for three bounds: the data must come back, not a stall.
 */
async function assertReadThroughStall(chunks: AsyncGenerator<Buffer>, write: (data: Buffer) => void): Promise<void> {
  await checkPhase();
  const next = chunks.next(); // the idle bound is armed now
  await Promise.resolve();
  write(Buffer.from('late but there'));
  blockLoop(BOUND_MS * 3);
  const got = await next;
  assert.equal(got.done, false);
  assert.equal(got.value?.toString(), 'late but there');
  await chunks.return(undefined);
}

test('migration socket: data written while the loop is blocked past the idle bound is read, not reported as a stall', { timeout: 60_000 }, async () => {
  const dir = await createFifoDir();
  let client: Socket | undefined;
  const sock = await MigrationSocket.listen(join(dir.path, 'migrate.sock'), { connectTimeoutMs: 30_000, idleTimeoutMs: BOUND_MS });
  try {
    const c = connect(sock.path);
    client = c;
    await new Promise<void>((resolve, reject) => c.once('connect', resolve).once('error', reject));
    while (!sock.connected) await checkPhase(); // accepted (no bound runs before chunks() is called)
    await checkPhase(); // and reading

    await assertReadThroughStall(sock.chunks(), (b) => c.write(b));
  } finally {
    client?.destroy();
    sock.close();
    await dir.remove();
  }
});

test('memory FIFO: data written while the loop is blocked past the idle bound is read, not reported as a stall', { timeout: 60_000 }, async () => {
  const dir = await createFifoDir();
  try {
    const path = join(dir.path, 'ram-0.raw');
    await makeFifo(path);
    const reader = new FifoReader(path, { openTimeoutMs: 30_000, idleTimeoutMs: BOUND_MS });
    const fd = openSync(path, fsConstants.O_WRONLY); // does not block: the read end is open
    try {
      const chunks = reader.chunks();
      writeSync(fd, Buffer.from('first'));
      const first = await chunks.next(); // within the first-byte bound (30 s)
      assert.equal(first.value?.toString(), 'first');

      await assertReadThroughStall(chunks, (b) => writeSync(fd, b));
    } finally {
      closeSync(fd);
    }
  } finally {
    await dir.remove();
  }
});
