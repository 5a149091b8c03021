/**
 * Capture against awkward but real situations: a QEMU that was never started (-S), pmemsave on
 * aarch64, and an output file system that fills up mid-stream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../../src/bundle';
import { capture } from '../../src/capture';
import { openOutput } from '../../src/capture/output';
import { launchBootSectorGuest, startQemu } from '../../src/guest';
import { requireTools } from '../helpers/requirements';
import { mountSmallTmpfs } from '../helpers/tmpfs';
import { launchAarch64Guest } from '../guest-extra/guests';
import { status, withBundle, withGuest } from './harness';

test('a guest still in prelaunch (-S) is captured as it is: not stopped, not resumed, and the manifest says it never ran', { skip: requireTools('qemu-system-x86_64') }, async () => {
  await withGuest(() => launchBootSectorGuest({ startPaused: true }), async ({ client, dir }) => {
    const output = join(dir, 'prelaunch.vmpm');
    const result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    assert.equal(result.summary.stateBefore, 'prelaunch');
    assert.equal(result.summary.stateAfter, 'prelaunch');
    await withBundle(output, async (reader) => {
      const manifest = await reader.json<Manifest>('manifest');
      assert.equal(manifest.runState.before.status, 'prelaunch');
      assert.equal(manifest.runState.after.status, 'prelaunch');
      // `cont` would start a guest that was never started: vmpm must not send it (nor `stop`).
      assert.deepEqual(manifest.actions.map((a) => a.action), ['dump-guest-memory']);
      assert.ok(manifest.warnings.some((w) => /has not started yet \(QEMU -S, run state prelaunch\)/.test(w)), manifest.warnings.join('; '));
      // The boot sector never ran, so its marker is not in RAM yet.
      assert.notDeepEqual(await reader.read(0x30000n, 17), Buffer.from('FORENSIC-MARKER-1'));
    });
    assert.equal((await status(client)).status, 'prelaunch');
  });
});

test('pmemsave on aarch64 virt captures the same RAM as dump, at 0x40000000', { skip: requireTools('qemu-system-aarch64') }, async () => {
  await withGuest(() => launchAarch64Guest(), async ({ client, dir }) => {
    const a = join(dir, 'dump.vmpm');
    const b = join(dir, 'pmemsave.vmpm');
    // keep-stopped so that both captures see the same memory.
    await capture(client, { output: a, quiesce: 'keep-stopped', memory: 'dump' });
    await capture(client, { output: b, quiesce: 'keep-stopped', memory: 'pmemsave' });
    await withBundle(a, (ra) =>
      withBundle(b, async (rb) => {
        assert.deepEqual(
          rb.ranges().map((r) => [r.start, r.length]),
          [[0x40000000n, 64n << 20n]],
        );
        const pa = [...ra.pages()];
        const pb = [...rb.pages()];
        assert.equal(pa.length, pb.length);
        assert.equal(pa.filter((p, i) => !p.digest.equals(pb[i]!.digest)).length, 0);
        assert.ok(pb.some((p) => !p.zero));
        const manifest = await rb.json<Manifest>('manifest');
        assert.deepEqual(manifest.actions.map((x) => x.action), ['pmemsave']);
      }),
    );
  });
});

test('a file system that fills up mid-stream: one-line error naming the file, nothing left behind, the guest running again', { skip: requireTools('qemu-system-x86_64') }, async (t) => {
  const fs = mountSmallTmpfs('vmpm-full');
  if (typeof fs === 'string') {
    t.skip(fs);
    return;
  }
  try {
    // 16 MiB of random (incompressible, distinct) pages put into guest RAM by QEMU's loader device:
    // far more than the 2 MiB the output may take and than the frames the writer keeps in flight, so
    // the write fails while memory is streaming (not only when finish() drains the pipeline).
    const launch = (): ReturnType<typeof startQemu> =>
      startQemu({ memory: '64M' }, (dir) => {
        const blob = join(dir, 'random.bin');
        writeFileSync(blob, randomBytes(16 << 20));
        return ['-M', 'pc', '-device', `loader,file=${blob},addr=0x1000000,force-raw=on`];
      });
    await withGuest(launch, async ({ client }) => {
      assert.equal((await status(client)).status, 'running');
      // Only this process's FIFO directories (they carry the creating pid): other jobs capture into /tmp too.
      const mine = `vmpm-fifo-${process.pid}-`;
      const fifoDirsBefore = readdirSync(tmpdir()).filter((n) => n.startsWith(mine));
      const output = join(fs.dir, 'full.vmpm');
      await assert.rejects(capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' }), (err: Error) => {
        assert.match(err.message, /^capture failed during memory: cannot write .*full\.vmpm: no space left on device$/);
        return true;
      });
      assert.deepEqual(readdirSync(fs.dir), [], 'no bundle and no temporary file is left');
      assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith(mine) && !fifoDirsBefore.includes(n)), []);
      assert.equal((await status(client)).status, 'running');
      // keepPartial cannot seal anything on a full disk either: still nothing that looks like a bundle.
      await assert.rejects(capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump', keepPartial: true }), /no space left on device/);
      assert.deepEqual(readdirSync(fs.dir), []);
      assert.equal((await status(client)).status, 'running');
    });
  } finally {
    fs.unmount();
  }
});

test('a QEMU that stops writing mid-stream (SIGSTOP) fails after the idle bound instead of hanging, and says the guest is left stopped', { skip: requireTools('qemu-system-x86_64') }, async () => {
  await withGuest(
    () => startQemu({ memory: '256M' }, () => ['-M', 'pc']),
    async ({ qemu, client, dir }) => {
      let frozen = false;
      try {
        const t0 = Date.now();
        await assert.rejects(
          capture(client, {
            output: join(dir, 'stalled.vmpm'),
            quiesce: 'stop-and-restore',
            memory: 'dump',
            fifoIdleTimeoutMs: 500,
            onProgress: (p) => {
              // Freeze QEMU once RAM is flowing: its dump thread holds the FIFO open and writes nothing more.
              if (p.phase === 'memory' && (p.done ?? 0) > 0 && !frozen) {
                frozen = true;
                process.kill(qemu.pid, 'SIGSTOP');
              }
            },
          }),
          (err: Error) => {
            assert.match(err.message, /^capture failed during memory: QEMU wrote nothing into the memory FIFO .* for 500 ms after \d+ bytes \(is QEMU stopped or hung\?\)/);
            // query-status cannot be answered by a frozen QEMU: the user is told the guest stays stopped.
            assert.match(err.message, /; the guest vmpm stopped is left stopped \(could not resume it: .*\)$/);
            assert.doesNotMatch(err.message, /\n/);
            return true;
          },
        );
        assert.ok(frozen, 'QEMU was frozen mid-stream');
        assert.ok(Date.now() - t0 < 15_000);
        assert.deepEqual(readdirSync(dir), [], 'no bundle and no temporary file is left');
      } finally {
        if (frozen) process.kill(qemu.pid, 'SIGCONT');
      }
      assert.equal((await status(client)).status, 'paused');
    },
  );
});

test('keepPartial with overwrite onto a directory is refused when the output is opened, not after the capture', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-output-test-'));
  try {
    const output = join(dir, 'case.vmpm');
    mkdirSync(output);
    await assert.rejects(openOutput({ output, overwrite: true, keepPartial: true }), (err: Error) => {
      assert.equal(err.message, `cannot write bundle ${output}: it is a directory (only a regular file can be overwritten)`);
      return true;
    });
    await assert.rejects(openOutput({ output, keepPartial: true }), /case\.vmpm already exists \(refusing to overwrite it/);
    assert.deepEqual(readdirSync(dir), ['case.vmpm'], 'no .partial.vmpm or temporary file was created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
