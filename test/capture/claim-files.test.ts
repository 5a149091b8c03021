/**
 * Claim files a killed vmpm leaves behind, as the next vmpm finds them (claim-report.ts): the claim,
 * and the `.tmp` a kill between Claim.sync()'s write and its rename leaves beside it; a claim made
 * through another transport found by the guest's UUID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Claim, endpointKey, processRuns, processStart, type ClaimRecord } from '../../src/capture/claim';
import { claimQemuGone, reportStaleClaims, staleClaims } from '../../src/capture/claim-report';
import { QmpClient, socketFileIdentity } from '../../src/qmp';
import { startFakeQemu } from '../helpers/fake-qemu';

const endpoint = 'unix:/run/test-vm.qmp';

/** The pid of a process that has exited (a pid nothing runs under now). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

function record(pid: number, at: string): ClaimRecord {
  return { version: 1, pid, pidStart: '1', origin: 'capture', policy: 'stop-and-restore', endpoint, output: '/x.vmpm', startedAt: at, changes: [{ what: 'stopped', at, undo: { command: 'cont' } }] };
}

async function withDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-files-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a kill between the write and the rename: the .tmp holds the newer record, and both files are the claim', async () => {
  await withDir(async (dir) => {
    const pid = deadPid();
    const base = join(dir, `claim-${endpointKey(endpoint)}-${pid}.json`);
    writeFileSync(base, JSON.stringify(record(pid, '2026-12-02T00:00:00.000Z')));
    writeFileSync(`${base}.tmp`, JSON.stringify(record(pid, '2026-12-02T00:00:01.000Z')));
    const claims = (await staleClaims(endpoint, dir)).claims;
    assert.equal(claims.length, 1);
    assert.equal(claims[0]!.startedAt, '2026-12-02T00:00:01.000Z');
    assert.deepEqual([...claims[0]!.paths].sort(), [base, `${base}.tmp`]);
  });
});

test('a .tmp cut short by the kill, with no claim beside it, is removed; with a claim beside it, the claim is read', async () => {
  await withDir(async (dir) => {
    const lone = deadPid();
    const loneTmp = `claim-${endpointKey(endpoint)}-${lone}.json.tmp`;
    writeFileSync(join(dir, loneTmp), '{"version":1,"pi');
    const other = deadPid();
    const base = `claim-${endpointKey(endpoint)}-${other}.json`;
    writeFileSync(join(dir, base), JSON.stringify(record(other, '2026-12-02T00:00:00.000Z')));
    writeFileSync(join(dir, `${base}.tmp`), '{"vers');
    const claims = (await staleClaims(endpoint, dir)).claims;
    assert.deepEqual(claims.map((c) => c.pid), [other]);
    assert.equal(claims[0]!.paths.length, 2, 'the cut tmp goes with its claim');
    assert.ok(!readdirSync(dir).includes(loneTmp), 'the lone cut tmp of a gone vmpm is removed');
  });
});

test('claims of a vmpm still running, and of other endpoints, are not reported', async () => {
  await withDir(async (dir) => {
    const mine = `claim-${endpointKey(endpoint)}-${process.pid}.json`;
    writeFileSync(join(dir, mine), JSON.stringify(record(process.pid, '2026-12-02T00:00:00.000Z')));
    const pid = deadPid();
    writeFileSync(join(dir, `claim-${endpointKey('unix:/other')}-${pid}.json`), JSON.stringify({ ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: 'unix:/other' }));
    assert.deepEqual((await staleClaims(endpoint, dir)).claims, []);
    assert.equal(readdirSync(dir).length, 2, 'nothing of theirs is touched');
  });
});

const UUID = '6f1d3a52-0c1e-4d8a-9a57-2b4f0e8c1d33';

test('staleClaims, the path reportStaleClaims reports and removes by: how each claim matched, the claims of an exited QEMU apart, and the UUID asked only when a claim of another endpoint names one', async () => {
  await withDir(async (dir) => {
    const here = 'unix:/nonexistent-vmpm-test/here.sock';
    let asked = 0;
    const askUuid = async (): Promise<string | null> => {
      asked++;
      return UUID.toUpperCase();
    };
    const write = (fields: Partial<ClaimRecord>): number => {
      const pid = deadPid();
      const r = { ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: here, ...fields };
      writeFileSync(join(dir, `claim-${endpointKey(r.endpoint)}-${pid}.json`), JSON.stringify(r));
      return pid;
    };
    const mine = write({});
    const otherGuest = write({ endpoint: 'libvirt:web9' }); // no UUID: never this guest's
    let found = await staleClaims({ endpoint: here, instance: 'unix-socket:1:2:3' }, dir, askUuid);
    assert.deepEqual(found.claims.map((c) => [c.pid, c.match]), [[mine, 'endpoint']]);
    assert.equal(asked, 0, 'no claim of another endpoint names a UUID: QEMU is not asked');

    const viaLibvirt = write({ endpoint: 'libvirt:web1', uuid: UUID, startedAt: '2026-12-02T00:00:05.000Z' });
    const exited = write({ endpoint: 'unix:/nonexistent-vmpm-test/old.sock', uuid: UUID, instance: 'unix-socket:7:8:9' });
    found = await staleClaims({ endpoint: here, instance: 'unix-socket:1:2:3' }, dir, askUuid);
    assert.equal(asked, 1);
    assert.deepEqual(found.claims.map((c) => [c.pid, c.match]), [[mine, 'endpoint'], [viaLibvirt, 'uuid']]);
    assert.deepEqual(found.exited.map((c) => [c.pid, c.why]), [[exited, 'its QMP socket is gone']]);
    assert.equal(readdirSync(dir).length, 4, 'staleClaims removes nothing');
    assert.ok(!found.claims.some((c) => c.pid === otherGuest));

    // A UUID given is used as it is (not asked); the all-zero one matches nothing.
    assert.deepEqual((await staleClaims({ endpoint: here, uuid: '00000000-0000-0000-0000-000000000000' }, dir, askUuid)).claims.map((c) => c.pid), [mine]);
    assert.equal(asked, 1);
  });
});

test('a claim made through another transport is the same guest when the UUIDs match (libvirt domain <-> its QMP socket); no UUID, the all-zero UUID or another UUID do not match', async () => {
  await withDir(async (dir) => {
    const pid = deadPid();
    const viaLibvirt = { ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: 'libvirt:web1@qemu:///system', uuid: UUID.toUpperCase() };
    writeFileSync(join(dir, `claim-${endpointKey(viaLibvirt.endpoint)}-${pid}.json`), JSON.stringify(viaLibvirt));
    const old = deadPid();
    // A file from before the uuid field: matched by endpoint only, as before.
    writeFileSync(join(dir, `claim-${endpointKey('libvirt:web2')}-${old}.json`), JSON.stringify({ ...record(old, '2026-12-02T00:00:01.000Z'), endpoint: 'libvirt:web2' }));
    const qmp = 'unix:/var/lib/libvirt/qemu/domain-3-web1/extra.sock';
    assert.deepEqual((await staleClaims({ endpoint: qmp, uuid: UUID }, dir)).claims.map((c) => c.pid), [pid]);
    assert.equal((await staleClaims({ endpoint: qmp, uuid: UUID }, dir)).claims[0]!.uuid, UUID, 'read back lower-case');
    assert.deepEqual((await staleClaims({ endpoint: qmp }, dir)).claims, []);
    assert.deepEqual((await staleClaims({ endpoint: qmp, uuid: '00000000-0000-0000-0000-000000000000' }, dir)).claims, []);
    assert.deepEqual((await staleClaims({ endpoint: qmp, uuid: '11111111-2222-3333-4444-555555555555' }, dir)).claims, []);
    assert.deepEqual((await staleClaims('libvirt:web2', dir)).claims.map((c) => c.pid), [old]);
    assert.deepEqual((await staleClaims({ endpoint: 'libvirt:web1@qemu:///system' }, dir)).claims.map((c) => c.pid), [pid], 'the endpoint alone still matches');
  });
});

test('Claim records the guest UUID (identify, before or after its first write) and never the all-zero one', async () => {
  await withDir((dir) => {
    const warnings: string[] = [];
    const claim = new Claim({ origin: 'capture', policy: 'stop-and-restore', endpoint: 'libvirt:web1', output: '/x.vmpm' }, warnings, dir);
    claim.identify('00000000-0000-0000-0000-000000000000');
    claim.sync([{ what: 'stopped', at: '2026-12-02T00:00:00.000Z', undo: { command: 'cont' } }]);
    assert.equal((JSON.parse(readFileSync(claim.path, 'utf8')) as ClaimRecord).uuid, null);
    claim.identify(UUID);
    assert.equal((JSON.parse(readFileSync(claim.path, 'utf8')) as ClaimRecord).uuid, UUID, 'rewritten with the UUID');
    claim.sync([]);
    assert.deepEqual(readdirSync(dir), []);
    assert.deepEqual(warnings, []);
  });
});

test('reportStaleClaims over QMP finds the claim a killed vmpm made through libvirt (by query-uuid) and gives the undo command for the endpoint in use', async () => {
  const fake = await startFakeQemu({ status: 'paused' });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-files-'));
  const client = await QmpClient.connect(fake.endpoint);
  try {
    const fakeUuid = '11111111-2222-3333-4444-555555555555'; // what the fake QEMU answers to query-uuid
    const pid = deadPid();
    const claimPath = join(dir, `claim-${endpointKey('libvirt:fake-vm')}-${pid}.json`);
    writeFileSync(claimPath, JSON.stringify({ ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: 'libvirt:fake-vm', uuid: fakeUuid }));
    const lines: string[] = [];
    assert.equal(await reportStaleClaims(client, (l) => lines.push(l), { dir }), 1);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, new RegExp(`^a previous vmpm capture \\(pid ${pid}, gone through libvirt:fake-vm\\) stopped this guest at 2026-12-02T00:00:00\\.000Z and could not resume it; it is still paused\\..* to resume it: vmpm qmp --qmp ${fake.endpoint.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} cont --allow cont$`));
    assert.ok(fake.state.commands.includes('query-uuid'));

    // Another guest's claim (another UUID) is not this guest's: not reported, not touched.
    writeFileSync(claimPath, JSON.stringify({ ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: 'libvirt:fake-vm', uuid: UUID }));
    assert.equal(await reportStaleClaims(client, () => undefined, { dir }), 0);
    assert.ok(readdirSync(dir).length === 1);
  } finally {
    await client.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('socketFileIdentity: a socket re-created at the same path is another one (even on the same inode); no socket there is absent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-sock-'));
  const path = join(dir, 'q.sock');
  const listen = async (): Promise<Server> => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(path, r));
    return s;
  };
  try {
    assert.deepEqual(socketFileIdentity(path), { state: 'absent' });
    let server = await listen();
    const first = socketFileIdentity(path);
    assert.equal(first.state, 'present');
    assert.match((first as { instance: string }).instance, /^unix-socket:\d+:\d+:\d+$/);
    assert.deepEqual(socketFileIdentity(path), first, 'stable while the socket is there');
    await new Promise<void>((r) => server.close(() => r()));
    assert.deepEqual(socketFileIdentity(path), { state: 'absent' }, 'a server that closed removed its socket');
    await new Promise((r) => setTimeout(r, 20)); // another mtime even where the filesystem's clock is coarse
    server = await listen();
    const second = socketFileIdentity(path);
    assert.equal(second.state, 'present');
    assert.notDeepEqual(second, first);
    await new Promise<void>((r) => server.close(() => r()));
    writeFileSync(path, '');
    assert.deepEqual(socketFileIdentity(path), { state: 'absent' }, 'a regular file is no QEMU');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('claimQemuGone: the same endpoint with another instance is another QEMU; no instance, a relative path or an unknown kind tell nothing', () => {
  const pid = deadPid();
  const base = record(pid, '2026-12-02T00:00:00.000Z');
  const viaLibvirt = { ...base, endpoint: 'libvirt:web1', instance: 'libvirt-domain-id:7' };
  assert.equal(claimQemuGone(viaLibvirt, { endpoint: 'libvirt:web1', instance: 'libvirt-domain-id:7' }), null);
  assert.equal(claimQemuGone(viaLibvirt, { endpoint: 'libvirt:web1', instance: 'libvirt-domain-id:8' }), 'the libvirt domain has been started again since');
  assert.equal(claimQemuGone(viaLibvirt, { endpoint: 'libvirt:web1', instance: null }), null);
  assert.equal(claimQemuGone(viaLibvirt, { endpoint: 'unix:/run/other.sock', instance: 'unix-socket:1:2:3' }), null, 'another transport: cannot tell');
  assert.equal(claimQemuGone({ ...base, endpoint: 'libvirt:web1' }, { endpoint: 'libvirt:web1', instance: 'libvirt-domain-id:8' }), null, 'an older claim without instance');
  const missing = 'unix:/nonexistent-vmpm-test/q.sock';
  assert.equal(claimQemuGone({ ...base, endpoint: missing, instance: 'unix-socket:1:2:3' }), 'its QMP socket is gone');
  assert.equal(claimQemuGone({ ...base, endpoint: missing, instance: null }), null);
  assert.equal(claimQemuGone({ ...base, endpoint: 'unix:rel/q.sock', instance: 'unix-socket:1:2:3' }, { endpoint: 'unix:rel/q.sock', instance: 'unix-socket:4:5:6' }), null, 'a relative path names another file from another directory');
  assert.equal(claimQemuGone({ ...base, endpoint: 'tcp:h:4444', instance: null }, { endpoint: 'tcp:h:4444', instance: null }), null);
});

test('reportStaleClaims drops (and says once) a claim of a QEMU that has exited: another socket at the endpoint, or none; keeps the claim of this QEMU and claims without instance', async () => {
  const fake = await startFakeQemu({ status: 'paused' });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-files-'));
  const client = await QmpClient.connect(fake.endpoint);
  try {
    assert.match(String(client.instance), /^unix-socket:/);
    const write = (pid: number, fields: Partial<ClaimRecord>): string => {
      const r = { ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: fake.endpoint, ...fields };
      const path = join(dir, `claim-${endpointKey(r.endpoint)}-${pid}.json`);
      writeFileSync(path, JSON.stringify(r));
      return path;
    };
    const earlier = deadPid();
    const earlierPath = write(earlier, { instance: 'unix-socket:1:2:3' }); // the QEMU that had this socket before
    const gonePath = write(deadPid(), { endpoint: 'unix:/nonexistent-vmpm-test/q.sock', instance: 'unix-socket:1:2:3' });
    const relPath = write(deadPid(), { endpoint: 'unix:rel/q.sock', instance: 'unix-socket:1:2:3' });
    const lines: string[] = [];
    const notes: string[] = [];
    assert.equal(await reportStaleClaims(client, (l) => lines.push(l), { dir, note: (l) => notes.push(l) }), 0);
    assert.deepEqual(lines, [], 'a claim of a QEMU that has exited is not reported as this guest\'s');
    assert.equal(notes.length, 1, `only this endpoint's claim is told of: ${notes.join('\n')}`);
    assert.match(notes[0]!, new RegExp(`^dropped the claim a previous vmpm capture \\(pid ${earlier}, gone\\) left on ${fake.endpoint.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} at 2026-12-02T00:00:00\\.000Z: the QEMU it was about has exited \\(another QEMU has its QMP socket now\\)`));
    assert.deepEqual(readdirSync(dir).map((n) => join(dir, n)).sort(), [relPath], 'both removed; the relative one untouched');
    assert.ok(![earlierPath, gonePath].some((p) => existsSync(p)));

    // This QEMU's own claim (its instance), and one from before the field: reported as today.
    rmSync(relPath);
    write(deadPid(), { instance: client.instance });
    write(deadPid(), {});
    const reported: string[] = [];
    const noted: string[] = [];
    assert.equal(await reportStaleClaims(client, (l) => reported.push(l), { dir, note: (l) => noted.push(l) }), 2);
    assert.equal(reported.length, 2);
    assert.deepEqual(noted, []);
  } finally {
    await client.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Claim writes the instance it is given, and an older reader\'s fields stay as they were', async () => {
  await withDir((dir) => {
    const claim = new Claim({ origin: 'capture', policy: 'stop-and-restore', endpoint: 'libvirt:web1', instance: 'libvirt-domain-id:3', output: '/x.vmpm' }, [], dir);
    claim.sync([{ what: 'stopped', at: '2026-12-02T00:00:00.000Z', undo: { command: 'cont' } }]);
    const r = JSON.parse(readFileSync(claim.path, 'utf8')) as ClaimRecord;
    assert.equal(r.instance, 'libvirt-domain-id:3');
    assert.equal(r.version, 1);
    claim.sync([]);
  });
});

test('two QEMUs sharing a UUID (a copied -uuid, a migration\'s source and destination): the other one\'s vmpm leaves the claim alone; only a vmpm on the claim\'s endpoint removes it', async () => {
  // Every fake QEMU answers query-uuid with the same UUID.
  const stopped = await startFakeQemu({ status: 'paused' }); // the guest the killed vmpm stopped
  const twin = await startFakeQemu({ status: 'running' });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-files-'));
  const onStopped = await QmpClient.connect(stopped.endpoint);
  const onTwin = await QmpClient.connect(twin.endpoint);
  try {
    const pid = deadPid();
    const claimPath = join(dir, `claim-${endpointKey(stopped.endpoint)}-${pid}.json`);
    writeFileSync(claimPath, JSON.stringify({ ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: stopped.endpoint, uuid: '11111111-2222-3333-4444-555555555555', instance: onStopped.instance }));

    // The twin runs: nothing of the claim is in effect there, but that says nothing about the guest it was made on.
    const lines: string[] = [];
    const notes: string[] = [];
    assert.equal(await reportStaleClaims(onTwin, (l) => lines.push(l), { dir, note: (l) => notes.push(l) }), 0);
    assert.deepEqual([lines, notes], [[], []]);
    assert.ok(twin.state.commands.includes('query-uuid'), 'the twin was matched by UUID');
    assert.ok(existsSync(claimPath), 'a claim matched only by UUID is not removed');

    // Paused too, the twin is told (a UUID match is reported), and the claim stays.
    twin.state.status = 'paused';
    assert.equal(await reportStaleClaims(onTwin, (l) => lines.push(l), { dir }), 1);
    assert.match(lines[0]!, new RegExp(`^a previous vmpm capture \\(pid ${pid}, gone through ${stopped.endpoint.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) stopped this guest`));
    assert.ok(existsSync(claimPath));

    // The guest it was made on: still paused, reported; once resumed, its own vmpm removes the claim.
    assert.equal(await reportStaleClaims(onStopped, () => undefined, { dir }), 1);
    stopped.state.status = 'running';
    assert.equal(await reportStaleClaims(onStopped, () => undefined, { dir }), 0);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    await onStopped.close();
    await onTwin.close();
    await stopped.stop();
    await twin.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('processRuns: the same process (pid and start time) runs; an exited one, or its pid with another start time (reused), does not', () => {
  const self = processStart('self');
  assert.ok(self !== null, 'this test needs /proc');
  assert.equal(processRuns(process.pid, self), true);
  assert.equal(processRuns(process.pid, undefined), true, 'no start time recorded: the pid alone decides');
  assert.equal(processRuns(process.pid, null), true);
  assert.equal(processRuns(process.pid, String(Number(self) + 1)), false, 'another start time: a reused pid');
  const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  assert.equal(processRuns(Number(exited.stdout), undefined), false, 'an exited (and reaped) process');
  assert.equal(processRuns(1, processStart(1)), true, "another user's or a system process counts while it runs (EPERM or not)");
});
