import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeQemu } from '../helpers/fake-qemu';
import { runNode, VMPM_BIN } from '../helpers/cli';
import { releaseFifoLeftovers } from '../../src/capture/leftovers';
import { processStart } from '../../src/capture/claim';

/**
 * Issue 13 item 7: after `kill -9` of a capture, its unfinished bundle and FIFO directory stay behind
 * (nothing can remove them); the next capture into the same directory finds them and says so.
 */
const root = mkdtempSync(join(tmpdir(), 'vmpm-leftovers-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('the capture after a kill -9 reports the unfinished bundle and the FIFO directory it left', async () => {
  const out = join(root, 'out');
  const tmp = join(root, 'tmp');
  mkdirSync(out);
  mkdirSync(tmp);
  let writing: (() => void) | undefined;
  const streaming = new Promise<void>((r) => (writing = r));
  // pmemsave writes 1 MiB and then stalls, holding the capture mid-memory.
  const fake = await startFakeQemu({
    fault: (_c, _conn, _s, step) => {
      if (step !== 'pmemsave') return false;
      const fifo = createWriteStream(String(_c.arguments?.filename));
      fifo.on('error', () => undefined);
      fifo.write(Buffer.alloc(1 << 20, 1), () => writing?.());
      return true;
    },
  });
  try {
    const env = { ...process.env, TMPDIR: tmp, NO_COLOR: '1' };
    const args = ['capture', '--qmp', fake.endpoint, '--memory-method', 'pmemsave'];
    const first = spawn(process.execPath, [VMPM_BIN, ...args, '-o', join(out, 'a.vmpm')], { env, stdio: 'ignore' });
    await streaming;
    first.kill('SIGKILL');
    await new Promise((r) => first.on('close', r));
    assert.equal(readdirSync(out).filter((n) => n.includes('.partial-')).length, 1, 'the killed capture leaves its temporary bundle');
    assert.equal(readdirSync(tmp).filter((n) => n.startsWith('vmpm-fifo-')).length, 1, 'and its FIFO directory');
    const second = spawn(process.execPath, [VMPM_BIN, 'capture', '--qmp', fake.endpoint, '--no-memory', '-o', join(out, 'b.vmpm')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    second.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise((r) => second.on('close', r));
    assert.match(stderr, /warning: found an unfinished bundle \(\d+ bytes\) left by an earlier vmpm .*\.a\.vmpm\.partial-/);
    assert.match(stderr, /warning: found a memory FIFO directory left by an earlier vmpm .*vmpm-fifo-.*; released and removed it/);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('vmpm-fifo-')), [], 'the dead vmpm\'s FIFO directory is gone');
    assert.ok(code === 0 || code === 1, stderr);
  } finally {
    await fake.stop();
  }
});

/** A writer (libvirtd, QEMU) that had not opened the FIFO when vmpm was killed: a process blocked in open(FIFO, O_WRONLY). */
function blockedWriter(fifo: string): ReturnType<typeof runNode> {
  const script = `const fs = require('node:fs');
const fd = fs.openSync(process.argv[1], 'w');
process.stdout.write('opened ');
try { fs.writeSync(fd, Buffer.alloc(65536, 1)); process.stdout.write('wrote'); } catch (e) { process.stdout.write(e.code); }`;
  return runNode('-e', [script, fifo], { timeoutMs: 60_000 });
}

/** Until `pid` waits in open() for a FIFO reader (its wchan; 0 while it runs), or 2 s where /proc does not say. */
async function waitBlockedInOpen(pid: number): Promise<void> {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    try {
      if (readFileSync(`/proc/${pid}/wchan`, 'utf8') === 'wait_for_partner') return;
    } catch {
      await new Promise((r) => setTimeout(r, 2000));
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a FIFO directory of a vmpm that is gone: a writer blocked opening its FIFO is let go (its write fails EPIPE) and the directory removed; a running vmpm\'s is left alone', async () => {
  const tmp = mkdtempSync(join(root, 'release-'));
  // A pid that runs no process: a child that has exited.
  const gone = spawnSync(process.execPath, ['-e', '']).pid!;
  const dead = join(tmp, `vmpm-fifo-${gone}-abc123`);
  // Our own pid, with another start time recorded: that pid was reused, the vmpm that made it is gone.
  const reused = join(tmp, `vmpm-fifo-${process.pid}-s1-def456`);
  // Ours, start time and all: a vmpm that runs.
  const live = join(tmp, `vmpm-fifo-${process.pid}-s${processStart('self')}-ghi789`);
  for (const d of [dead, reused, live]) {
    mkdirSync(d);
    execFileSync('mkfifo', [join(d, 'memory')]);
  }
  const writers = [blockedWriter(join(dead, 'memory')), blockedWriter(join(reused, 'memory'))];
  for (const w of writers) await waitBlockedInOpen(w.pid);

  const found = releaseFifoLeftovers(tmp);
  assert.deepEqual(found.map((l) => [l.path, l.kind, l.released]).sort(), [[dead, 'fifo-dir', true], [reused, 'fifo-dir', true]].sort());
  for (const w of writers) {
    const r = await w.done;
    assert.equal(r.timedOut, false, 'the blocked open() returned');
    assert.equal(r.stdout, 'opened EPIPE', r.stderr);
  }
  assert.equal(existsSync(dead), false);
  assert.equal(existsSync(reused), false);
  assert.ok(lstatSync(join(live, 'memory')).isFIFO(), 'a running vmpm\'s FIFO is untouched');
  assert.deepEqual(releaseFifoLeftovers(tmp), [], 'nothing left to release');
});
