/**
 * A vmpm killed with SIGKILL while it holds a running guest stopped: the guest stays paused (nothing
 * can resume it), and the next `vmpm state` / `vmpm capture` against it say who stopped it, when, and
 * the exact command that resumes it, without resuming it. Real QEMU, a real capture, a real kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startQemu } from '../../src/guest';
import type { ClaimRecord } from '../../src/capture/claim';
import { runCli, VMPM_BIN } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { extraQmp } from '../watch/helpers';
import { status, withGuest } from './harness';

test('kill -9 during a capture: the guest stays paused, and the next state and capture name the vmpm that stopped it and the command that resumes it', { skip: requireTools('qemu-system-x86_64'), timeout: 180_000 }, async () => {
  const runtime = mkdtempSync(join(tmpdir(), 'vmpm-claims-'));
  const out = mkdtempSync(join(tmpdir(), 'vmpm-claim-out-'));
  const env = { VMPM_RUNTIME_DIR: runtime };
  try {
    // No boot disk: SeaBIOS keeps the guest running. 1 GiB so the dump lasts long enough to strike in.
    await withGuest(
      () => startQemu({ memory: '1G' }, (d) => ['-M', 'pc', ...extraQmp(join(d, 'cli.sock'))]),
      async ({ qemu, client }) => {
        // QEMU serves one client per -qmp socket: vmpm gets its own, the test keeps the first.
        const endpoint = `unix:${join(qemu.dir, 'cli.sock')}`;
        assert.equal((await status(client)).status, 'running');
        const child = spawn(process.execPath, [VMPM_BIN, 'capture', '--qmp', endpoint, '-o', join(out, 'k.vmpm'), '--memory-method', 'dump'], {
          // A private TMPDIR: the FIFO directory the killed capture cannot remove goes with `out`.
          env: { ...process.env, ...env, TMPDIR: out },
          stdio: 'ignore',
        });
        const exited = new Promise<void>((r) => child.on('exit', () => r()));
        // Strike once the claim is written and the temporary bundle exists: the guest is stopped by then.
        const until = Date.now() + 60_000;
        while (!(readdirSync(runtime).some((n) => n.startsWith('claim-')) && readdirSync(out).some((n) => n.includes('.partial-'))) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 5));
        }
        const claimFile = readdirSync(runtime).find((n) => n.startsWith('claim-') && n.endsWith('.json'));
        assert.ok(claimFile, 'the capture wrote a claim before stopping the guest');
        child.kill('SIGKILL');
        await exited;
        const s = await status(client);
        assert.equal(s.status, 'paused', 'the guest the killed vmpm stopped is still stopped');
        const claim = JSON.parse(readFileSync(join(runtime, claimFile), 'utf8')) as ClaimRecord;
        assert.equal(claim.pid, child.pid);
        assert.ok(claim.endpoint.endsWith('cli.sock'), claim.endpoint);
        assert.deepEqual(claim.changes.map((c) => c.what), ['stopped']);

        const resume = `vmpm qmp --qmp ${claim.endpoint} cont --allow cont`;
        const expected = new RegExp(`^vmpm: warning: a previous vmpm capture \\(pid ${child.pid}, gone\\) stopped this guest at ${claim.changes[0]!.at.replace(/\./g, '\\.')} and could not resume it; it is still paused\\. vmpm does not resume it by itself; to resume it: ${resume.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm');
        const st = await runCli(['state', '--qmp', endpoint], { env });
        assert.equal(st.code, 11, st.stdout);
        assert.match(st.stderr, expected);
        const json = await runCli(['state', '--qmp', endpoint, '--json'], { env });
        assert.equal((JSON.parse(json.stdout) as { previousVmpm: string[] }).previousVmpm.length, 1);

        const again = await runCli(['capture', '--qmp', endpoint, '-o', join(out, 'next.vmpm'), '--no-memory'], { env });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, expected);
        assert.equal((await status(client)).status, 'paused', 'never resumed automatically');

        // The command it names works as written, and once the guest runs the claim is gone.
        execSync(resume.replace(/^vmpm/, `'${process.execPath}' '${VMPM_BIN}'`), { env: { ...process.env, ...env }, stdio: 'pipe' });
        assert.equal((await status(client)).status, 'running');
        const after = await runCli(['state', '--qmp', endpoint], { env });
        assert.equal(after.code, 0);
        assert.equal(after.stderr, '');
        assert.deepEqual(readdirSync(runtime).filter((n) => n.startsWith('claim-')), [], 'a claim nothing is left of is removed');
      },
    );
  } finally {
    rmSync(runtime, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  }
});
