/**
 * Issue 13: SIGINT/SIGTERM sent to a capturing vmpm always end in vmpm's own handling (one `vmpm:` line,
 * exit 128 + N, temporary bundle and FIFO directory removed, the guest as the policy says), whatever the
 * phase: before any handler used to exist (start-up, the QMP connect: the signal's default action killed
 * vmpm silently), during the capture, and a second signal during the cleanup that resumes the guest
 * (the first signal used to remove the handler, so the second killed vmpm with the guest still paused).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startQemu } from '../../src/guest';
import { runNode, VMPM_BIN, type NodeResult } from '../helpers/cli';
import { startFakeQemu } from '../helpers/fake-qemu';
import { requireTools } from '../helpers/requirements';
import { extraQmp } from '../watch/helpers';
import { status, withGuest } from '../capture/harness';

interface Spawned {
  pid: number;
  done: Promise<NodeResult>;
  dirs: { out: string; tmp: string; run: string };
}

function spawnCapture(root: string, args: string[]): Spawned {
  const dirs = { out: join(root, 'out'), tmp: join(root, 'tmp'), run: join(root, 'run') };
  for (const d of Object.values(dirs)) mkdirSync(d);
  const { pid, done } = runNode(VMPM_BIN, ['capture', '-o', join(dirs.out, 'c.vmpm'), ...args], {
    env: { NO_COLOR: '1', TMPDIR: dirs.tmp, VMPM_RUNTIME_DIR: dirs.run },
    timeoutMs: 90_000,
  });
  return { pid, done, dirs };
}

/** Exit 128 + N by vmpm's own hand, exactly one `vmpm:` line, and nothing left behind. */
function assertInterrupted(r: { code: number | null; signal: NodeJS.Signals | null; stderr: string }, dirs: Spawned['dirs'], code: number, what: string): void {
  assert.equal(r.signal, null, `${what}: vmpm was killed by ${r.signal} (the signal's default action), stderr ${JSON.stringify(r.stderr)}`);
  assert.equal(r.code, code, `${what}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n').filter((l) => l !== '' && !l.startsWith('vmpm: warning: '));
  assert.equal(lines.length, 1, `${what}: one line, got ${JSON.stringify(r.stderr)}`);
  assert.match(lines[0]!, /^vmpm: .*interrupted/, what);
  assert.deepEqual(readdirSync(dirs.out), [], `${what}: no bundle, no temporary bundle`);
  assert.deepEqual(readdirSync(dirs.tmp), [], `${what}: no FIFO directory`);
  assert.deepEqual(readdirSync(dirs.run).filter((n) => n.startsWith('claim-')), [], `${what}: no claim left`);
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** vmpm holds a socket beyond its stdio (socketpairs here): it is connecting to QMP (Node opens none of its own). */
function hasSocket(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      if (Number(fd) <= 2) return false;
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

test('SIGINT/SIGTERM while capture waits for the QMP greeting (before the temporary bundle exists): one line and 128 + N, not a silent death', async () => {
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    const root = mkdtempSync(join(tmpdir(), 'vmpm-sig-'));
    let connected!: () => void;
    const seen = new Promise<void>((r) => (connected = r));
    const sockets: Socket[] = [];
    const server = createServer((s) => {
      sockets.push(s.on('error', () => undefined));
      connected();
    }).listen(join(root, 'qmp.sock'));
    try {
      const c = spawnCapture(root, ['--qmp', join(root, 'qmp.sock')]);
      await seen; // connected, waiting for a greeting that never comes
      process.kill(c.pid, sig);
      assertInterrupted(await c.done, c.dirs, code, `${sig} before the greeting`);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('a second SIGINT during the cleanup (while `cont` is in flight) does not kill vmpm: the guest is resumed, one line, exit 128 + N of the first', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vmpm-sig-'));
  let pid = 0;
  const fake = await startFakeQemu({
    fault: (cmd, conn, state, step) => {
      // pmemsave: vmpm is capturing, the guest is stopped; QEMU never opens the FIFO. Strike.
      if (step === 'pmemsave') {
        process.kill(pid, 'SIGINT');
        return true;
      }
      // The cleanup's cont: strike again (the same signal: the old handler was a `once` per signal), answer a little later.
      if (step === 'cont') {
        process.kill(pid, 'SIGINT');
        setTimeout(() => {
          state.status = 'running';
          conn.event('RESUME');
          conn.reply(cmd, {});
        }, 300);
        return true;
      }
      return false;
    },
  });
  try {
    const c = spawnCapture(root, ['--qmp', fake.endpoint, '--memory-method', 'pmemsave']);
    pid = c.pid;
    const r = await c.done;
    assertInterrupted(r, c.dirs, 130, 'SIGINT, then SIGINT again during the cleanup');
    assert.equal(fake.state.status, 'running', 'stop-and-restore: the guest vmpm stopped is resumed');
    assert.ok(fake.state.commands.includes('cont'));
  } finally {
    await fake.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test('real QEMU: SIGINT/SIGTERM before the temporary bundle exists and during the dump (twice), each one line, 128 + N, the guest running', { skip: requireTools('qemu-system-x86_64'), timeout: 240_000 }, async () => {
  await withGuest(
    () => startQemu({ memory: '512M' }, (d) => ['-M', 'pc', ...extraQmp(join(d, 'cli.sock'))]),
    async ({ qemu, client }) => {
      const endpoint = `unix:${join(qemu.dir, 'cli.sock')}`;
      assert.equal((await status(client)).status, 'running');

      // 1. The phase the fault table's 8 silent deaths were in: vmpm started but not yet capturing.
      // The test's client holds the first monitor; vmpm connects to it and waits for the greeting.
      for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
        const root = mkdtempSync(join(tmpdir(), 'vmpm-sig-'));
        try {
          const c = spawnCapture(root, ['--qmp', qemu.endpoint, '--memory-method', 'dump']);
          await waitFor('vmpm to connect', () => hasSocket(c.pid));
          process.kill(c.pid, sig);
          assertInterrupted(await c.done, c.dirs, code, `${sig} while connecting`);
          assert.equal((await status(client)).status, 'running');
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }

      // 2. Once the temporary bundle exists (what bench/faults.ts waits for), and again 20 ms later.
      for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
        const root = mkdtempSync(join(tmpdir(), 'vmpm-sig-'));
        try {
          const c = spawnCapture(root, ['--qmp', endpoint, '--memory-method', 'dump']);
          await waitFor('the temporary bundle', () => readdirSync(c.dirs.out).some((n) => n.includes('.partial-')));
          process.kill(c.pid, sig);
          await new Promise((r) => setTimeout(r, 20));
          try {
            process.kill(c.pid, sig);
          } catch {
            // already gone
          }
          assertInterrupted(await c.done, c.dirs, code, `${sig} twice during the dump`);
          assert.equal((await status(client)).status, 'running', 'stop-and-restore: resumed');
        } finally {
          rmSync(root, { recursive: true, force: true });
        }
      }
    },
  );
});
