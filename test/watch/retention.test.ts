/**
 * watch --max-bundles / --max-bytes over real captures of the boot-sector guest, and a full disk
 * during an incident (a real ENOSPC on a 2 MiB tmpfs): what the notification and the hook say.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBootSectorGuest, type LaunchedQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { mountSmallTmpfs } from '../helpers/tmpfs';
import { extraQmp, startWatch, waitForStatus, type WatchProcess } from './helpers';

const skip = requireTools('qemu-system-x86_64', 'ssh-keygen');
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-retention-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
function track<T extends LaunchedQemu | WatchProcess>(x: T): T {
  cleanups.push(() => x.kill());
  return x;
}

/** Resumes the panicked guest and resets it: the boot sector runs again and panics again (a new incident). */
async function panicAgain(endpoint: string): Promise<void> {
  const c = await QmpClient.connect(endpoint, { allow: ['cont', 'system_reset'] });
  try {
    await c.execute('cont');
    await c.execute('system_reset');
  } finally {
    await c.close();
  }
}

const bundlesIn = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.vmpm')).sort();

describe('watch retention and a full disk', { skip }, () => {
  it('--max-bundles deletes the oldest incident bundles with their .sig and .resumed.json, never the newest of a stopped VM, never anything else', async () => {
    const dir = tempDir();
    const socks = tempDir();
    const key = join(socks, 'key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    // What is not the watch's: a user's file, a damaged file and a `vmpm capture` bundle both named like
    // incident bundles, and a symlink named like one. None may be deleted or counted.
    writeFileSync(join(dir, 'notes.txt'), 'keep');
    writeFileSync(join(dir, 'old-20250101T000000.000Z-guest_panicked.vmpm'), 'not a bundle');
    const other = track(await launchBootSectorGuest({}));
    const manual = join(dir, 'ret-20250101T000000.000Z-guest_panicked-2.vmpm');
    const c = await runCli(['capture', '--qmp', other.endpoint, '-o', manual, '--no-memory']);
    assert.equal(c.code, 0, c.stderr);
    await other.kill();
    symlinkSync(manual, join(dir, 'ret-20250101T000001.000Z-guest_panicked.vmpm'));
    const foreign = readdirSync(dir).sort();

    const watchSock = join(socks, 'w.sock');
    const guest = track(await launchBootSectorGuest({ startPaused: true, name: 'ret', extraArgs: extraQmp(watchSock) }));
    const watch = track(startWatch(['--qmp', watchSock, '--out-dir', dir, '--no-memory', '--max-bundles', '2', '--sign-key', key]));
    await watch.logged('connected to QEMU');
    const c0 = await QmpClient.connect(guest.endpoint, { allow: ['cont'] });
    await c0.execute('cont');
    await c0.close();
    const first = await watch.notification(1);
    for (let i = 2; i <= 3; i++) {
      await panicAgain(guest.endpoint);
      await watch.logged('resume recorded next to', i - 1);
      await watch.notification(i);
    }
    const [n1, n2, n3] = [first, watch.notifications[1]!, watch.notifications[2]!];
    // After the third incident: three watch bundles, over 2: the oldest goes, with its signature and resume record.
    await watch.logged(`retention: deleted ${n1.bundle}`);
    assert.ok(!existsSync(n1.bundle!) && !existsSync(`${n1.bundle}.sig`) && !existsSync(`${n1.bundle}.resumed.json`));
    assert.ok(existsSync(n2.bundle!) && existsSync(`${n2.bundle}.sig`) && existsSync(`${n2.bundle}.resumed.json`));
    assert.ok(existsSync(n3.bundle!) && existsSync(`${n3.bundle}.sig`));
    for (const f of foreign) assert.ok(readdirSync(dir).includes(f), `${f} is not the watch's and must stay`);
    await watch.kill();

    // A new watch applies its limit at start: one bundle allowed, the newest is of a VM still stopped
    // (guest-panicked), so n2 goes and n3 stays.
    const strict = track(startWatch(['--qmp', watchSock, '--out-dir', dir, '--no-memory', '--max-bundles', '1']));
    await strict.logged(`retention: deleted ${n2.bundle}`);
    await strict.kill();
    // Over --max-bytes 1 with only the protected bundle left: it stays, and a warning says why.
    const tiny = track(startWatch(['--qmp', watchSock, '--out-dir', dir, '--no-memory', '--max-bytes', '1']));
    await tiny.logged('newest bundle(s) of VMs that may still be stopped');
    await tiny.kill();
    assert.deepEqual(bundlesIn(dir), [...foreign.filter((f) => f.endsWith('.vmpm')), n3.bundle!.split('/').pop()!].sort());
    assert.ok(!tiny.stderr().includes('retention: deleted'));
    const state = await runCli(['state', '--qmp', guest.endpoint, '--out-dir', dir]);
    assert.equal(state.code, 10, `the kept bundle still makes the VM failover-safe: ${state.stdout}`);
  });

  it('a full disk during an incident: the notification and the hook say disk-full and that the guest is held stopped', async (t) => {
    const fs = mountSmallTmpfs('vmpm-watch-full');
    if (typeof fs === 'string') {
      t.skip(fs);
      return;
    }
    cleanups.push(() => fs.unmount());
    const socks = tempDir();
    const blob = join(socks, 'random.bin');
    // 16 MiB of incompressible guest RAM (QEMU's loader device): far more than the 2 MiB tmpfs holds.
    writeFileSync(blob, randomBytes(16 << 20));
    const watchSock = join(socks, 'w.sock');
    const guest = track(await launchBootSectorGuest({ startPaused: true, memory: '64M', name: 'full', extraArgs: [...extraQmp(watchSock), '-device', `loader,file=${blob},addr=0x1000000,force-raw=on`] }));
    const watch = track(startWatch(['--qmp', watchSock, '--out-dir', fs.dir, '--memory-method', 'dump', '--exec', 'echo "hook: failure=$VMPM_CAPTURE_FAILURE safe=$VMPM_FAILOVER_SAFE"']));
    await watch.logged('connected to QEMU');
    const c = await QmpClient.connect(guest.endpoint, { allow: ['cont'] });
    try {
      await c.execute('cont');
      const n = await watch.notification(1, 60_000);
      assert.equal(n.captureFailure, 'disk-full');
      assert.equal(n.bundle, null);
      assert.equal(n.failoverSafe, false);
      assert.match(n.error ?? '', new RegExp(`^capture failed: disk full: no space left in ${fs.dir} for the bundle \\(.*\\); the guest is held stopped \\(guest-panicked\\) per the watch policy`));
      assert.ok(n.lost.some((l) => l.includes('is full')), n.lost.join('; '));
      await watch.logged('hook: failure=disk-full safe=0');
      await waitForStatus(c, 'guest-panicked');
      assert.deepEqual(readdirSync(fs.dir), [], 'no bundle and no temporary file is left on the full disk');
    } finally {
      await c.close();
      await watch.kill();
    }
  });
});
