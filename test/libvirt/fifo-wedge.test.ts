/**
 * The wedge CI found: a vmpm `capture --libvirt --memory-method dump` killed with SIGKILL after it ran
 * `virsh dump --memory-only` into its FIFO but before libvirtd opened it. libvirtd opens the path
 * itself, holding the domain, and waits in open() for a reader that never comes: `virsh domstate`,
 * `virsh create`... of that domain wait with it. Made here on purpose (the FIFO in a directory named
 * for a pid that runs no process, `virsh dump` started, libvirtd seen waiting in open()): the next
 * `vmpm state --libvirt` releases it before it connects; the dump fails and the domain answers.
 * Real libvirtd, real QEMU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { createBootSectorDomain, useLibvirtd } from '../helpers/libvirtd';

const lv = useLibvirtd('vmpm-libvirt-wedge-');
const { skip } = lv;

/** Whether any thread of `pid` waits in open() for a FIFO's other end. */
function waitsForFifo(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((t) => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8') === 'wait_for_partner';
    } catch {
      return false;
    }
  });
}

test('libvirtd left waiting to open a killed vmpm\'s FIFO (virsh dump --memory-only) is released by the next vmpm state, and the domain answers again', { skip, timeout: 180_000 }, async () => {
  const dom = await createBootSectorDomain(lv.host, { blank: true });
  const tmp = mkdtempSync(join(lv.dir, 'tmp-'));
  try {
    await lv.host.virsh.run(['resume', dom.name]);
    const gone = spawnSync(process.execPath, ['-e', '']).pid!; // a pid that runs no process now
    const dir = join(tmp, `vmpm-fifo-${gone}-wedge0`);
    mkdirSync(dir);
    const fifo = join(dir, 'memory.elf');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const dump = lv.host.virsh.raw(['dump', dom.name, fifo, '--memory-only'], { timeoutMs: 120_000 });
    const until = Date.now() + 30_000;
    while (!waitsForFifo(lv.host.libvirtdPid()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(waitsForFifo(lv.host.libvirtdPid()), 'libvirtd waits in open() of the FIFO');
    // The wedge itself: libvirtd does not answer about this domain.
    const wedged = await lv.host.virsh.raw(['domstate', dom.name], { timeoutMs: 2_000 }).then(
      (r) => `answered (exit ${r.code}): ${r.stdout.trim()}`,
      (err: Error) => `no answer: ${err.message}`,
    );
    assert.match(wedged, /^no answer/, 'virsh domstate waits while libvirtd waits in open()');

    const next = await runCli(['state', '--libvirt', dom.name, '--connect', lv.host.uri], { env: { TMPDIR: tmp }, timeoutMs: 60_000 });
    assert.equal(next.code, 0, next.stdout + next.stderr);
    assert.match(next.stderr, /^vmpm: warning: found a memory FIFO directory left by an earlier vmpm that is gone \(killed\?\): .*vmpm-fifo-\d+-wedge0 .*; released and removed it/m);
    assert.equal(existsSync(dir), false, 'the directory is gone');
    const ended = await dump;
    assert.notEqual(ended.code, 0, `the dump fails (nobody reads it): ${ended.stdout}${ended.stderr}`);
    assert.equal((await lv.host.virsh.run(['domstate', dom.name], { timeoutMs: 5_000 })).trim(), 'running');
  } finally {
    await dom.destroy();
  }
});
