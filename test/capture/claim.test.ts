/**
 * A vmpm killed with SIGKILL while it holds a running guest stopped: the guest stays paused (nothing
 * can resume it), and the next `vmpm state` / `vmpm capture` against it say who stopped it, when, and
 * the exact command that resumes it, without resuming it. Real QEMU, a real capture, a real kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startQemu } from '../../src/guest';
import type { ClaimRecord } from '../../src/capture/claim';
import { fifoMade } from '../helpers/fifo-dirs';
import { runCli, VMPM_BIN } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { extraQmp, withClient } from '../watch/helpers';
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
        // Strike once the claim is written, the temporary bundle exists and QEMU says the guest is
        // paused: the claim is written just BEFORE `stop` is sent, so the files alone may be too early.
        const until = Date.now() + 60_000;
        const struck = async (): Promise<boolean> =>
          readdirSync(runtime).some((n) => n.startsWith('claim-')) && readdirSync(out).some((n) => n.includes('.partial-')) && fifoMade(out) && (await status(client)).status === 'paused';
        while (!(await struck()) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 5));
        }
        const claimFile = readdirSync(runtime).find((n) => n.startsWith('claim-') && n.endsWith('.json'));
        assert.ok(claimFile, 'the capture wrote a claim before stopping the guest');
        child.kill('SIGKILL');
        await exited;
        // The kill may come after vmpm sent dump-guest-memory but before QEMU opened the FIFO: QEMU's
        // main loop (QMP included) then waits in open() for a reader that never comes. The next vmpm
        // (with the killed one's TMPDIR) releases it, before it connects; only then is QMP asked, bounded.
        await releasedByNextVmpm(['state', '--qmp', endpoint], out, env);
        const s = await bounded(status(client), 5_000, 'QEMU answers query-status after the next vmpm ran');
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
    // maxRetries: a failure above may leave the killed capture's files settling as this runs.
    rmSync(runtime, { recursive: true, force: true, maxRetries: 3 });
    rmSync(out, { recursive: true, force: true, maxRetries: 3 });
  }
});

test('a claim outlives its QEMU: killed, and a new QEMU started with -S at the same socket path; state reports no previous vmpm and the stale claim is gone', { skip: requireTools('qemu-system-x86_64'), timeout: 180_000 }, async () => {
  const runtime = mkdtempSync(join(tmpdir(), 'vmpm-claims-'));
  const out = mkdtempSync(join(tmpdir(), 'vmpm-claim-out-'));
  const sockets = mkdtempSync(join(tmpdir(), 'vmpm-claim-sock-'));
  const shared = join(sockets, 'vm.sock'); // the path both QEMUs serve, outside either's own dir
  const endpoint = `unix:${shared}`;
  const env = { VMPM_RUNTIME_DIR: runtime };
  const started: Array<{ kill(): Promise<void> }> = [];
  try {
    const first = await startQemu({ memory: '1G' }, () => ['-M', 'pc', ...extraQmp(shared)]);
    started.push(first);
    const child = spawn(process.execPath, [VMPM_BIN, 'capture', '--qmp', endpoint, '-o', join(out, 'k.vmpm'), '--memory-method', 'dump'], {
      env: { ...process.env, ...env, TMPDIR: out },
      stdio: 'ignore',
    });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const until = Date.now() + 60_000;
    while (!(readdirSync(runtime).some((n) => n.startsWith('claim-')) && readdirSync(out).some((n) => n.includes('.partial-')) && fifoMade(out)) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await exited;
    // First the next vmpm (it releases a QEMU left waiting to open the FIFO), then QMP, bounded.
    await releasedByNextVmpm(['state', '--qmp', endpoint], out, env);
    await withClient(endpoint, (c) => bounded(status(c), 5_000, 'QEMU answers query-status after the next vmpm ran'));
    const claimFile = readdirSync(runtime).find((n) => n.startsWith('claim-') && n.endsWith('.json'));
    assert.ok(claimFile, 'the killed capture left a claim');
    const claim = JSON.parse(readFileSync(join(runtime, claimFile), 'utf8')) as ClaimRecord;
    assert.match(String(claim.instance), /^unix-socket:\d+:\d+:\d+$/, 'the claim names the QEMU by its socket file');
    // Still the same QEMU: the claim is reported (not taken for another QEMU's).
    const before = await runCli(['state', '--qmp', endpoint, '--json'], { env });
    assert.equal((JSON.parse(before.stdout) as { previousVmpm?: string[] }).previousVmpm?.length, 1, before.stderr);

    // QEMU is killed as the test suite does it (SIGKILL: it leaves its socket file), then a new one,
    // paused from the start, is started at the same path.
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    assert.ok(existsSync(shared), 'the killed QEMU left its socket file');
    const second = await startQemu({ startPaused: true }, () => ['-M', 'pc', ...extraQmp(shared)]);
    started.push(second);
    const until2 = Date.now() + 15_000;
    while (!existsSync(shared) && Date.now() < until2) await new Promise((r) => setTimeout(r, 10));

    const st = await runCli(['state', '--qmp', endpoint], { env });
    assert.doesNotMatch(st.stderr, /previous vmpm.*stopped this guest/, st.stderr);
    assert.match(st.stderr, new RegExp(`^vmpm: note: dropped the claim a previous vmpm capture \\(pid ${child.pid}, gone\\) left on .* the QEMU it was about has exited \\(another QEMU has its QMP socket now\\)`, 'm'));
    assert.deepEqual(readdirSync(runtime).filter((n) => n.startsWith('claim-')), [], 'the stale claim is gone');
    const json = await runCli(['state', '--qmp', endpoint, '--json'], { env });
    assert.equal((JSON.parse(json.stdout) as { previousVmpm?: string[]; status: string }).previousVmpm, undefined);
    assert.equal(json.stderr, '', 'said once');
  } finally {
    for (const q of started) await q.kill();
    rmSync(runtime, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
    rmSync(sockets, { recursive: true, force: true });
  }
});


/** The next vmpm command after a kill -9, run with the killed vmpm's TMPDIR: it releases and removes the FIFO directory left there. */
async function releasedByNextVmpm(args: string[], tmp: string, env: NodeJS.ProcessEnv): Promise<void> {
  assert.ok(readdirSync(tmp).some((n) => n.startsWith('vmpm-fifo-')), 'the killed vmpm left its FIFO directory');
  const r = await runCli(args, { env: { ...env, TMPDIR: tmp }, timeoutMs: 60_000 });
  assert.match(r.stderr, /^vmpm: warning: found a memory FIFO directory left by an earlier vmpm .*vmpm-fifo-.*; released and removed it/m, r.stdout + r.stderr);
  assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('vmpm-fifo-')), [], 'the next vmpm removed it');
}

/** `p`, or a failure naming `what` after `ms` (a QEMU whose main loop waits in open() never answers). */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
