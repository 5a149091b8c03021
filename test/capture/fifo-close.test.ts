/**
 * A QEMU command that reaches a memory FIFO after vmpm closed it must not wedge QEMU. `pmemsave` and
 * `dump-guest-memory` open the FIFO on QEMU's main thread; if the command was still queued when vmpm
 * gave up (first-byte bound, abort) and the FIFO was still there with no reader, that open() blocked
 * for good: the cleanup's `cont` was never answered and QEMU hung. close() now replaces the FIFO's
 * name by a symlink to itself before dropping the read end, so a late open fails with ELOOP; QEMU
 * opens with O_CREAT, so a plain unlink would have let it create a file and write guest RAM to disk.
 *
 * The late writer is a child process (its open() would block its main thread); it is killed if it has
 * not ended within 30 s, which only happens when the open blocks. No assertion depends on timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { FifoReader, createFifoDir, makeFifo } from '../../src/capture/fifo';
import { launchQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { runNode, type NodeRun } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';

/** Opens the path for writing as QEMU does: O_WRONLY|O_CREAT|O_TRUNC (pmemsave's fopen "wb", dump's file:). */
const LATE_OPEN = `
const fs = require('node:fs');
try { fs.openSync(process.argv[1], 'w'); process.stdout.write('opened'); }
catch (e) { process.stdout.write(String(e.code)); }
`;

/** After close(): the name no longer leads anywhere a writer could open, and no file was created. */
async function assertLateOpenFails(path: string): Promise<void> {
  const r = await runScript(LATE_OPEN, path).done;
  assert.equal(r.timedOut, false, 'the late open blocked (it had to be killed)');
  assert.equal(r.stdout, 'ELOOP');
  assert.ok(lstatSync(path).isSymbolicLink(), 'the FIFO name was not replaced (a file was created?)');
}

/** Writes 64 KiB blocks until a write fails; prints the failure's code. */
const ENDLESS_WRITER = `
const fs = require('node:fs');
const fd = fs.openSync(process.argv[1], 'w');
const block = Buffer.alloc(65536, 1);
try { for (;;) fs.writeSync(fd, block); } catch (e) { process.stdout.write(String(e.code)); }
`;

/** A FIFO made in a fresh FIFO directory, for `fn`; the directory goes afterwards. */
async function withFifo(name: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await createFifoDir();
  try {
    const path = join(dir.path, name);
    await makeFifo(path);
    await fn(path);
  } finally {
    await dir.remove();
  }
}

/** `node -e SCRIPT PATH`, killed after 30 s (only a blocked open or write takes that long). */
const runScript = (script: string, path: string): NodeRun => runNode('-e', [script, path], { timeoutMs: 30_000 });

test('a FIFO closed before any writer came (an abort): a later open for writing fails (ELOOP) instead of blocking or creating a file', { timeout: 60_000 }, async () => {
  await withFifo('ram-0.raw', async (path) => {
    const reader = new FifoReader(path);
    await reader.close(); // what the abort listener does
    await assertLateOpenFails(path);
  });
});

test('a FIFO given up on at the first-byte bound: a later open for writing (a queued QEMU command) fails (ELOOP)', { timeout: 60_000 }, async () => {
  await withFifo('memory.elf', async (path) => {
    const reader = new FifoReader(path, { openTimeoutMs: 100 });
    await assert.rejects(
      (async () => {
        for await (const c of reader.chunks()) void c;
      })(),
      /did not open the memory FIFO/,
    );
    await assertLateOpenFails(path);
  });
});

test('a writer in the middle of the stream when the reader closes fails its write with EPIPE instead of blocking on the full pipe', { timeout: 60_000 }, async () => {
  await withFifo('ram-1.raw', async (path) => {
    const reader = new FifoReader(path);
    const writer = runScript(ENDLESS_WRITER, path);
    let got = 0;
    for await (const c of reader.chunks()) {
      got += c.length;
      break; // the consumer gives up: chunks()'s finally closes the reader
    }
    assert.ok(got > 0);
    const r = await writer.done;
    assert.equal(r.timedOut, false, 'the writer stayed blocked (it had to be killed)');
    assert.equal(r.stdout, 'EPIPE');
    assert.ok(lstatSync(path).isSymbolicLink());
  });
});

test('real QEMU: a pmemsave that reaches the FIFO after vmpm gave up fails at once, and QEMU still answers (it used to block in open() for good)', { skip: requireTools('qemu-system-x86_64'), timeout: 120_000 }, async () => {
  const dir = await createFifoDir();
  const qemu = await launchQemu([], { memory: '16M', startPaused: true });
  try {
    const client = await QmpClient.connect(qemu.endpoint);
    try {
      const path = join(dir.path, 'ram-0.raw');
      await makeFifo(path);
      const reader = new FifoReader(path);
      await reader.close(); // vmpm gave up before QEMU ran the command
      // Bounded only so a regression fails instead of hanging the test; the reply normally comes at once.
      await assert.rejects(client.execute('pmemsave', { val: 0, size: 4096, filename: path }, { timeoutMs: 30_000 }), /symbolic links|ELOOP/i);
      const status = await client.execute<{ status: string }>('query-status', undefined, { timeoutMs: 30_000 });
      assert.equal(status.status, 'prelaunch');
      assert.ok(lstatSync(path).isSymbolicLink(), 'QEMU created a file in the FIFO directory');
    } finally {
      await client.close().catch(() => undefined);
    }
  } finally {
    await qemu.kill();
    await dir.remove();
  }
});
