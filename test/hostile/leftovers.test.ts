import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeQemu } from '../helpers/fake-qemu';
import { VMPM_BIN } from '../helpers/cli';

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
    assert.match(stderr, /warning: found a memory FIFO directory left by an earlier vmpm .*vmpm-fifo-/);
    assert.ok(code === 0 || code === 1, stderr);
  } finally {
    await fake.stop();
  }
});
