/**
 * The wedge a vmpm killed with SIGKILL can leave: it asked QEMU for `pmemsave` into its FIFO and died
 * before QEMU opened it. QEMU opens on its main thread and waits there (QMP included) for a reader
 * that never comes. Made here on purpose (the FIFO in a directory named for a pid that runs no
 * process, pmemsave sent, QEMU seen waiting in open()): the next vmpm command releases it before it
 * connects, QEMU's pmemsave fails instead of writing, and the monitor answers again. Real QEMU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startQemu } from '../../src/guest';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { extraQmp } from '../watch/helpers';
import { status, withGuest } from './harness';

test('a QEMU left waiting to open a killed vmpm\'s FIFO (pmemsave) is released by the next vmpm state, and its monitor answers again', { skip: requireTools('qemu-system-x86_64', 'mkfifo'), timeout: 120_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vmpm-wedge-'));
  try {
    await withGuest(
      () => startQemu({ memory: '64M' }, (d) => ['-M', 'pc', ...extraQmp(join(d, 'cli.sock'))]),
      async ({ qemu, client }) => {
        const gone = spawnSync(process.execPath, ['-e', '']).pid!; // a pid that runs no process now
        const dir = join(tmp, `vmpm-fifo-${gone}-wedge0`);
        mkdirSync(dir);
        const fifo = join(dir, 'ram-0.raw');
        execFileSync('mkfifo', ['-m', '0600', fifo]);
        const pmemsave = client.execute('pmemsave', { val: 0, size: 1 << 20, filename: fifo }).then(
          () => 'ok',
          (err: Error) => `error: ${err.message}`,
        );
        // QEMU's main thread now waits in open() for a reader.
        const until = Date.now() + 20_000;
        let wchan = '';
        while (Date.now() < until && (wchan = readFileSync(`/proc/${qemu.pid}/wchan`, 'utf8')) !== 'wait_for_partner') await new Promise((r) => setTimeout(r, 20));
        assert.equal(wchan, 'wait_for_partner', 'QEMU waits in open() of the FIFO');

        const next = await runCli(['state', '--qmp', `unix:${join(qemu.dir, 'cli.sock')}`], { env: { TMPDIR: tmp }, timeoutMs: 60_000 });
        assert.equal(next.code, 0, next.stdout + next.stderr);
        assert.match(next.stderr, /^vmpm: warning: found a memory FIFO directory left by an earlier vmpm that is gone \(killed\?\): .*vmpm-fifo-\d+-wedge0 .*; released and removed it/m);
        assert.equal(existsSync(dir), false, 'the directory is gone');
        // pmemsave ends (its write got EPIPE: no guest memory written anywhere), and QMP answers.
        assert.match(await pmemsave, /^error: /);
        assert.equal((await status(client)).status, 'running');
      },
      ['cont', 'pmemsave'],
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
