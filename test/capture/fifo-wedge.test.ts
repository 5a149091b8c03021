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

test('a QEMU left waiting to open a killed vmpm\'s FIFO (pmemsave) is released by the next vmpm state or vmpm qmp, and its monitor answers again', { skip: requireTools('qemu-system-x86_64', 'mkfifo'), timeout: 120_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'vmpm-wedge-'));
  try {
    await withGuest(
      () => startQemu({ memory: '64M' }, (d) => ['-M', 'pc', ...extraQmp(join(d, 'cli.sock'))]),
      async ({ qemu, client }) => {
        const cli = `unix:${join(qemu.dir, 'cli.sock')}`;
        // Released by `vmpm state` (what an HA agent polls), then by `vmpm qmp` (what a claim names to resume a guest).
        for (const [round, next] of [['state', ['state', '--qmp', cli]], ['qmp', ['qmp', '--qmp', cli, 'query-status']]] as const) {
          const gone = spawnSync(process.execPath, ['-e', '']).pid!; // a pid that runs no process now
          const dir = join(tmp, `vmpm-fifo-${gone}-wedge-${round}`);
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
          assert.equal(wchan, 'wait_for_partner', `${round}: QEMU waits in open() of the FIFO`);

          const r = await runCli([...next], { env: { TMPDIR: tmp }, timeoutMs: 60_000 });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          if (round === 'qmp') assert.match(r.stdout, /"status": ?"running"/);
          assert.match(r.stderr, new RegExp(`^vmpm: warning: found a memory FIFO directory left by an earlier vmpm that is gone \\(killed\\?\\): .*vmpm-fifo-\\d+-wedge-${round} .*; released and removed it`, 'm'));
          assert.equal(existsSync(dir), false, `${round}: the directory is gone`);
          // pmemsave ends (its write got EPIPE: no guest memory written anywhere), and QMP answers.
          assert.match(await pmemsave, /^error: /);
          assert.equal((await status(client)).status, 'running');
        }
      },
      ['cont', 'pmemsave'],
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
