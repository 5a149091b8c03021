import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CpusSection, ErrorsSection, Manifest, TranscriptSection } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import { BOOT_SECTOR_ANSWERS } from '../../src/guest';
import { connectLibvirt, connectQmpGuarded } from '../../src/libvirt';
import { fromHex } from '../../src/util/hex';
import { withBundle } from '../capture/harness';
import { startWatch } from '../watch/helpers';
import type { IncidentNotification } from '../../src/watch/notify';
import { runCli, userIds, VMPM_BIN } from '../helpers/cli';
import { spawnSync } from 'node:child_process';
import { createBootSectorDomain, useLibvirtd, waitForDomState } from '../helpers/libvirtd';

const lv = useLibvirtd('vmpm-libvirt-cli-');
const { skip } = lv;

async function assertKnownAnswers(path: string): Promise<Manifest> {
  return withBundle(path, async (reader) => {
    const cpu = (await reader.json<CpusSection>('cpus')).cpus[0]!;
    assert.equal(cpu.mode, 'real');
    for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) assert.equal(fromHex(cpu.registers[name] ?? 'missing'), value, `register ${name}`);
    for (const p of BOOT_SECTOR_ANSWERS.patterns) {
      const repeat = p.repeat ?? 1;
      const got = await reader.read(p.phys, p.bytes.length * repeat);
      assert.ok(got.equals(Buffer.concat(Array(repeat).fill(p.bytes))), `pattern at 0x${p.phys.toString(16)}`);
    }
    assert.equal(reader.ranges().reduce((s, r) => s + r.length, 0n), 64n << 20n);
    assert.ok((await reader.verify()).ok);
    return reader.json<Manifest>('manifest');
  });
}

test('known-answer boot sector as a libvirt domain: registers, pattern, the GUEST_PANICKED record, libvirt facts in the manifest', { skip }, async () => {
  const dom = await createBootSectorDomain(lv.host, { extraQmp: true });
  try {
    // Library path: connected through libvirt before the panic, so QEMU's event is in the bundle.
    const { client } = await connectLibvirt({ domain: dom.name, uri: lv.host.uri });
    const path = join(lv.dir, 'lib.vmpm');
    try {
      await lv.host.virsh.run(['resume', dom.name]);
      await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 15_000 });
      await capture(client, { output: path, quiesce: 'stop-and-restore', memory: 'dump' });
    } finally {
      await client.close();
    }
    const m = await assertKnownAnswers(path);
    assert.deepEqual(m.transport, {
      kind: 'libvirt',
      endpoint: `libvirt:${dom.name}@${lv.host.uri}`,
      libvirt: { domain: dom.name, uuid: dom.uuid, uri: lv.host.uri, libvirtVersion: m.transport?.libvirt?.libvirtVersion ?? null, qemuVersion: m.qemu?.version ?? null },
    });
    assert.match(m.transport?.libvirt?.libvirtVersion ?? '', /^\d+\.\d+\.\d+$/);
    assert.equal(m.runState.before.libvirt, 'crashed (panicked)');
    assert.equal(m.runState.after.libvirt, 'crashed (panicked)');
    assert.equal(m.vm.uuid, dom.uuid);
    assert.equal(m.qemu?.capabilities, null);
    assert.match(m.actions.find((a) => a.action === 'dump-guest-memory')?.detail ?? '', /virsh dump --memory-only/);
    await withBundle(path, async (reader) => {
      const errors = await reader.json<ErrorsSection>('errors');
      assert.ok(errors.records.some((r) => r.kind === 'guest-panicked' && r.source === 'event'), JSON.stringify(errors.records));
      // Every virsh call and its reply is in the transcript, next to the QMP exchange it carried out.
      const t = await reader.json<TranscriptSection>('qmp-transcript');
      const text = t.entries.map((e) => e.line).join('\n');
      assert.match(text, new RegExp(`virsh -c qemu:///system dump ${dom.name} \\S+ --memory-only --format elf`));
      assert.match(text, /"line":"crashed \(panicked\)"/);
      assert.match(text, /"virsh":"event GUEST_PANICKED at \d+\.\d+ for domain/);
    });

    // CLI path: vmpm capture --libvirt, and the same guest through its extra plain QMP socket.
    const cli = join(lv.dir, 'cli.vmpm');
    const r = await runCli(['capture', '--libvirt', dom.name, '--connect', lv.host.uri, '-o', cli]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^captured ${dom.name} \\[x86_64, guest-panicked\\]`));
    await assertKnownAnswers(cli);
    const plain = join(lv.dir, 'plain.vmpm');
    const p = await runCli(['capture', '--qmp', dom.qmpPath!, '-o', plain, '--json']);
    assert.equal(p.code, 0, p.stderr);
    const pm = await assertKnownAnswers(plain);
    assert.equal(pm.policy.memory, 'pmemsave');
    assert.equal(pm.transport?.kind, 'qmp');
    assert.match(pm.transport?.libvirtOwned ?? '', new RegExp(`domain ${dom.name}`));
    assert.ok(pm.warnings.some((w) => /never sends it dump-guest-memory/.test(w)));
    assert.ok(!pm.actions.some((a) => a.action === 'dump-guest-memory'));
  } finally {
    await dom.destroy();
  }
});

test('state --libvirt: the same exit codes as --qmp (0 running, 11 stopped, 10 failover-safe, 12 unreachable)', { skip }, async () => {
  const dom = await createBootSectorDomain(lv.host);
  const out = mkdtempSync(join(lv.dir, 'state-'));
  try {
    const state = (...extra: string[]) => runCli(['state', '--libvirt', dom.name, '--connect', lv.host.uri, '--out-dir', out, ...extra]);
    const paused = await state();
    assert.equal(paused.code, 11, paused.stdout + paused.stderr);
    assert.match(paused.stdout, new RegExp(`at libvirt:${dom.name}@`));
    const idle = await createBootSectorDomain(lv.host, { blank: true, memoryMiB: 16 });
    try {
      await lv.host.virsh.run(['resume', idle.name]);
      const running = await runCli(['state', '--libvirt', idle.name, '--connect', lv.host.uri, '--json']);
      assert.equal(running.code, 0, running.stdout + running.stderr);
      assert.equal((JSON.parse(running.stdout) as { status: string }).status, 'running');
    } finally {
      await idle.destroy();
    }
    await lv.host.virsh.run(['resume', dom.name]);
    await waitForDomState(lv.host, dom.name, 'crashed (panicked)');
    assert.equal((await state()).code, 11);
    const c = await runCli(['capture', '--libvirt', dom.name, '--connect', lv.host.uri, '-o', join(out, 'x.vmpm'), '--no-memory']);
    assert.equal(c.code, 0, c.stderr);
    const safe = await state();
    assert.equal(safe.code, 10, safe.stdout);
    assert.match(safe.stdout, /failover-safe: yes/);
    assert.match(safe.stdout, /^libvirt: +crashed \(panicked\)$/m);
    const gone = await runCli(['state', '--libvirt', 'vmpm-no-such-domain', '--connect', lv.host.uri]);
    assert.equal(gone.code, 12);
    assert.match(gone.stdout, /libvirt domain "vmpm-no-such-domain" not found on qemu:\/\/\/system/);
    await lv.host.virsh.run(['destroy', dom.name]);
    const destroyed = await state();
    assert.equal(destroyed.code, 12);
    assert.match(destroyed.stdout, /not found/); // a transient domain is gone once destroyed
    // A persistent domain that is defined but not running: no QEMU to ask, so unreachable too.
    const xml = join(dom.dir, 'domain.xml');
    await lv.host.virsh.run(['define', xml]);
    try {
      const off = await state();
      assert.equal(off.code, 12);
      assert.match(off.stdout, /is shut off \(unknown\): there is no QEMU process to inspect/);
    } finally {
      await lv.host.virsh.raw(['undefine', dom.name]);
    }
  } finally {
    await dom.destroy();
  }
});

test('a domain that does not exist, a libvirtd that is not running, a permission error: one line each, exit 1', { skip }, async () => {
  const oneLine = (r: { code: number; stderr: string }, pattern: RegExp): void => {
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  };
  const o = join(lv.dir, 'never.vmpm');
  oneLine(await runCli(['capture', '--libvirt', 'vmpm-no-such-domain', '--connect', lv.host.uri, '-o', o]), /^vmpm: libvirt domain "vmpm-no-such-domain" not found on qemu:\/\/\/system$/m);
  oneLine(
    await runCli(['capture', '--libvirt', 'x', '--connect', 'qemu+unix:///system?socket=/run/vmpm-no-libvirtd/sock', '-o', o]),
    /^vmpm: libvirtd is not running \(no daemon at \/run\/vmpm-no-libvirtd\/sock/m,
  );
  // libvirtd's read-only socket lets anyone read domain facts but not subscribe to QEMU's events.
  const dom = await createBootSectorDomain(lv.host, { memoryMiB: 16 });
  try {
    const ro = 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock-ro';
    oneLine(
      await runCli(['capture', '--libvirt', dom.name, '--connect', ro, '-o', o]),
      /^vmpm: permission denied by libvirt on qemu\+unix:\/\/\/system\?socket=\/run\/libvirt\/libvirt-sock-ro \(operation forbidden: read only access prevents \w+\); run as root or as a member of the libvirt group$/m,
    );
    assert.equal((await lv.host.virsh.run(['domstate', dom.name, '--reason'])).trim(), 'paused (user)', 'nothing was done to the guest');
  } finally {
    await dom.destroy();
  }
  // An unprivileged user is refused by libvirt's access control (polkit here, or socket permissions),
  // when that user can run this checkout at all (a clone under /root cannot be read by nobody).
  const nobody = userIds('nobody');
  if (spawnSync('test', ['-r', VMPM_BIN], nobody).status === 0) {
    const r = await runCli(['qmp', '--libvirt', 'x', '--connect', lv.host.uri, 'query-status'], { asUser: 'nobody' });
    oneLine(r, /^vmpm: permission denied by libvirt on qemu:\/\/\/system \(.*\); run as root or as a member of the libvirt group$/m);
  }
});

test('libvirtd survives 20 captures of one libvirt guest (libvirt dump, and pmemsave through a plain socket)', { skip }, async () => {
  const pid = lv.host.libvirtdPid();
  const dom = await createBootSectorDomain(lv.host, { extraQmp: true, memoryMiB: 16 });
  try {
    await lv.host.virsh.run(['resume', dom.name]);
    await waitForDomState(lv.host, dom.name, 'crashed (panicked)');
    for (let i = 0; i < 20; i++) {
      const viaLibvirt = i % 2 === 0;
      const path = join(lv.dir, `survive-${i}.vmpm`);
      const session = viaLibvirt ? { client: (await connectLibvirt({ domain: dom.name, uri: lv.host.uri })).client, libvirtOwned: undefined } : await connectQmpGuarded(dom.qmpPath!);
      const client = session.client;
      assert.equal(session.libvirtOwned === undefined, viaLibvirt);
      try {
        const r = await capture(client, { output: path, quiesce: 'keep-stopped', memory: 'dump', ...(session.libvirtOwned !== undefined ? { libvirtOwned: session.libvirtOwned } : {}) });
        assert.equal(r.manifest.policy.memory, viaLibvirt ? 'dump' : 'pmemsave');
      } finally {
        await client.close();
      }
      rmSync(path);
      assert.equal(lv.host.libvirtdPid(), pid, `libvirtd restarted after capture ${i + 1}`);
    }
    const still = await lv.host.virsh.run(['domstate', dom.name, '--reason']);
    assert.equal(still.trim(), 'crashed (panicked)');
  } finally {
    await dom.destroy();
  }
});

test('watch --libvirt-all: a domain running before the watch and one started after it are both watched and captured', { skip, timeout: 120_000 }, async () => {
  const out = mkdtempSync(join(lv.dir, 'all-'));
  const early = await createBootSectorDomain(lv.host, { memoryMiB: 16 });
  let late: Awaited<ReturnType<typeof createBootSectorDomain>> | undefined;
  // --no-memory: other test files may share this libvirtd; this watcher only reads from their domains.
  const watch = startWatch(['--libvirt-all', '--connect', lv.host.uri, '--out-dir', out, '--no-memory']);
  try {
    await watch.logged(`watching it`);
    await watch.logged(`[${early.name}]: connected to QEMU`);
    late = await createBootSectorDomain(lv.host, { memoryMiB: 16 });
    await watch.logged(`[${late.name}]: connected to QEMU`, 1, 30_000);
    for (const d of [early, late]) await lv.host.virsh.run(['resume', d.name]);
    const mine = async (name: string): Promise<IncidentNotification> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const n = watch.notifications.find((x) => x.vm.name === name);
        if (n) return n;
        if (Date.now() > deadline) assert.fail(`no incident for ${name}:\n${watch.stderr()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    for (const d of [early, late]) {
      const n = await mine(d.name);
      assert.equal(n.trigger.event, 'GUEST_PANICKED');
      assert.equal(n.failoverSafe, true, JSON.stringify(n));
      assert.equal(n.vm.endpoint, `libvirt:${d.name}@${lv.host.uri}`);
    }
  } finally {
    await watch.kill();
    await early.destroy();
    await late?.destroy();
  }
});
