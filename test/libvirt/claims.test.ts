/**
 * Issue 13: a claim (what a killed vmpm left changed on a guest, claim.ts) is found whichever way the
 * next vmpm reaches the same guest. A libvirt domain with a second QMP socket (qemu:commandline):
 * `capture --libvirt` killed with SIGKILL while the guest is stopped, then `state --qmp` on the socket
 * reports it; and the reverse. Real libvirtd, real QEMU, real kill -9.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fifoMade } from '../helpers/fifo-dirs';
import { runCli, VMPM_BIN } from '../helpers/cli';
import { createBootSectorDomain, domState, useLibvirtd } from '../helpers/libvirtd';

const lv = useLibvirtd('vmpm-libvirt-claims-');
const { skip } = lv;

/**
 * Starts `vmpm capture TARGET... --memory-method METHOD`, and SIGKILLs it once it wrote its claim and
 * libvirt reports the guest paused. The kill may come after vmpm asked for the dump but before the
 * writer (libvirtd for `dump`, QEMU for `pmemsave`) opened the FIFO: that writer then waits in open()
 * for a reader that never comes, holding the domain (libvirtd) or the monitor (QEMU). So the first
 * thing after the kill is the next vmpm (`state`, with the killed one's TMPDIR), which releases it;
 * only then are virsh and QMP asked, each bounded to a few seconds.
 */
async function killWhileStopped(name: string, target: string[], method: string, runtime: string, tag: string): Promise<void> {
  const out = join(lv.dir, tag);
  mkdirSync(out);
  const child = spawn(process.execPath, [VMPM_BIN, 'capture', ...target, '--memory-method', method, '-o', join(out, 'k.vmpm')], {
    env: { ...process.env, VMPM_RUNTIME_DIR: runtime, TMPDIR: out },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const until = Date.now() + 60_000;
  // Struck in the memory phase (its FIFO made): the kill lands near the moment the writer opens it.
  while (!(readdirSync(runtime).some((n) => n.startsWith('claim-')) && fifoMade(out) && (await domState(lv.host, name)) === 'paused')) {
    if (Date.now() > until) throw new Error(`${tag}: no claim, FIFO and paused guest within 60 s`);
    // Every 100 ms: a tighter poll (it was 5 ms, a virsh process each time) competes for the 2 cores with the capture it must catch.
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  await exited;
  assert.ok(readdirSync(out).some((n) => n.startsWith('vmpm-fifo-')), `${tag}: the killed vmpm left its FIFO directory`);
  const next = await runCli(['state', ...target], { env: { VMPM_RUNTIME_DIR: runtime, TMPDIR: out }, timeoutMs: 60_000 });
  assert.equal(next.code, 11, `${tag}: ${next.stdout}${next.stderr}`);
  assert.match(next.stderr, /^vmpm: warning: found a memory FIFO directory left by an earlier vmpm .*vmpm-fifo-.*; released and removed it/m, tag);
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('vmpm-fifo-')), [], `${tag}: the next vmpm removed it`);
  // libvirtd answers about the domain, and QEMU's monitor (through libvirt) answers, within seconds.
  assert.equal((await lv.host.virsh.run(['domstate', name], { timeoutMs: 5_000 })).trim(), 'paused', `${tag}: the killed vmpm left the guest paused`);
  assert.match(await lv.host.virsh.run(['qemu-monitor-command', name, '{"execute":"query-status"}'], { timeoutMs: 5_000 }), /"status":"paused"/);
}

test('a claim made through libvirt is reported through the QMP socket, and the reverse, with an undo command for the endpoint in use', { skip, timeout: 240_000 }, async () => {
  // A blank disk: SeaBIOS finds nothing to boot and keeps running. 512 MiB so the capture lasts long enough to strike in.
  const dom = await createBootSectorDomain(lv.host, { extraQmp: true, blank: true, memoryMiB: 512 });
  const runtime = mkdtempSync(join(lv.dir, 'run-'));
  const env = { VMPM_RUNTIME_DIR: runtime };
  const qmp = `unix:${dom.qmpPath!}`;
  const libvirt = ['--libvirt', dom.name, '--connect', lv.host.uri];
  try {
    await lv.host.virsh.run(['resume', dom.name]);

    // 1. Captured through libvirt, killed; looked at through the QMP socket.
    await killWhileStopped(dom.name, libvirt, 'dump', runtime, 'via-libvirt');
    const st = await runCli(['state', '--qmp', qmp], { env });
    assert.equal(st.code, 11, st.stdout + st.stderr);
    const undoQmp = `vmpm qmp --qmp ${qmp} cont --allow cont`;
    assert.match(st.stderr, new RegExp(`^vmpm: warning: a previous vmpm capture \\(pid \\d+, gone through libvirt:${dom.name}@qemu:///system\\) stopped this guest at \\S+ and could not resume it; it is still paused\\. .*to resume it: ${esc(undoQmp)}$`, 'm'));
    execSync(undoQmp.replace(/^vmpm/, `'${process.execPath}' '${VMPM_BIN}'`), { env: { ...process.env, ...env }, stdio: 'pipe' });
    assert.equal(await domState(lv.host, dom.name), 'running');
    const clean = await runCli(['state', '--qmp', qmp], { env });
    assert.equal(clean.stderr, '', 'once resumed, nothing is reported');
    // Matched by UUID only, the claim stays (another QEMU may share the UUID); through its own endpoint it goes.
    assert.equal(readdirSync(runtime).filter((n) => n.startsWith('claim-')).length, 1);
    assert.equal((await runCli(['state', ...libvirt], { env })).stderr, '');
    assert.deepEqual(readdirSync(runtime).filter((n) => n.startsWith('claim-')), []);

    // 2. Captured through the QMP socket (pmemsave: libvirt runs this QEMU), killed; looked at through libvirt.
    await killWhileStopped(dom.name, ['--qmp', qmp], 'pmemsave', runtime, 'via-qmp');
    const st2 = await runCli(['state', ...libvirt], { env });
    assert.equal(st2.code, 11, st2.stdout + st2.stderr);
    const undoLibvirt = `vmpm qmp --libvirt ${dom.name} --connect ${lv.host.uri} cont --allow cont`;
    assert.match(st2.stderr, new RegExp(`^vmpm: warning: a previous vmpm capture \\(pid \\d+, gone through ${esc(qmp)}\\) stopped this guest at \\S+ and could not resume it; it is still paused\\. .*to resume it: ${esc(undoLibvirt)}$`, 'm'));
    execSync(undoLibvirt.replace(/^vmpm/, `'${process.execPath}' '${VMPM_BIN}'`), { env: { ...process.env, ...env }, stdio: 'pipe' });
    assert.equal(await domState(lv.host, dom.name), 'running');
    const clean2 = await runCli(['state', ...libvirt], { env });
    assert.equal(clean2.stderr, '');
    assert.equal(readdirSync(runtime).filter((n) => n.startsWith('claim-')).length, 1, 'matched by UUID only: kept');
    assert.equal((await runCli(['state', '--qmp', qmp], { env })).stderr, '');
    assert.deepEqual(readdirSync(runtime).filter((n) => n.startsWith('claim-')), []);
  } finally {
    await dom.destroy();
  }
});

test('a claim outlives its QEMU: the domain destroyed and started again (paused, same UUID): state --libvirt reports no previous vmpm and the claim is gone', { skip, timeout: 240_000 }, async () => {
  const dom = await createBootSectorDomain(lv.host, { blank: true, memoryMiB: 512 });
  const runtime = mkdtempSync(join(lv.dir, 'run-'));
  const env = { VMPM_RUNTIME_DIR: runtime };
  const libvirt = ['--libvirt', dom.name, '--connect', lv.host.uri];
  try {
    await lv.host.virsh.run(['resume', dom.name]);
    const firstId = (await lv.host.virsh.run(['domid', dom.name])).trim();
    await killWhileStopped(dom.name, libvirt, 'dump', runtime, 'restarted');
    const file = readdirSync(runtime).find((n) => n.startsWith('claim-') && n.endsWith('.json'))!;
    assert.equal((JSON.parse(readFileSync(join(runtime, file), 'utf8')) as { instance?: string }).instance, `libvirt-domain-id:${firstId}`);

    // The QEMU goes; the same domain (name, UUID) is started again, paused from the start.
    await lv.host.virsh.run(['destroy', dom.name]);
    await lv.host.virsh.run(['create', join(dom.dir, 'domain.xml'), '--paused']);
    assert.notEqual((await lv.host.virsh.run(['domid', dom.name])).trim(), firstId);
    assert.equal(await domState(lv.host, dom.name), 'paused');
    const st = await runCli(['state', ...libvirt], { env });
    assert.doesNotMatch(st.stderr, /previous vmpm.*stopped this guest/, st.stderr);
    assert.match(st.stderr, /^vmpm: note: dropped the claim a previous vmpm capture \(pid \d+, gone\) left on libvirt:\S+ at \S+: the QEMU it was about has exited \(the libvirt domain has been started again since\)/m);
    assert.deepEqual(readdirSync(runtime).filter((n) => n.startsWith('claim-')), [], 'the stale claim is gone');
  } finally {
    await dom.destroy();
  }
});


function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
