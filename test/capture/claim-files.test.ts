/**
 * Claim files a killed vmpm leaves behind, as the next vmpm finds them (claim-report.ts): the claim,
 * and the `.tmp` a kill between Claim.sync()'s write and its rename leaves beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointKey, type ClaimRecord } from '../../src/capture/claim';
import { staleClaims } from '../../src/capture/claim-report';

const endpoint = 'unix:/run/test-vm.qmp';

/** The pid of a process that has exited (a pid nothing runs under now). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

function record(pid: number, at: string): ClaimRecord {
  return { version: 1, pid, pidStart: '1', origin: 'capture', policy: 'stop-and-restore', endpoint, output: '/x.vmpm', startedAt: at, changes: [{ what: 'stopped', at, undo: { command: 'cont' } }] };
}

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-files-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a kill between the write and the rename: the .tmp holds the newer record, and both files are the claim', () => {
  withDir((dir) => {
    const pid = deadPid();
    const base = join(dir, `claim-${endpointKey(endpoint)}-${pid}.json`);
    writeFileSync(base, JSON.stringify(record(pid, '2026-12-02T00:00:00.000Z')));
    writeFileSync(`${base}.tmp`, JSON.stringify(record(pid, '2026-12-02T00:00:01.000Z')));
    const claims = staleClaims(endpoint, dir);
    assert.equal(claims.length, 1);
    assert.equal(claims[0]!.startedAt, '2026-12-02T00:00:01.000Z');
    assert.deepEqual([...claims[0]!.paths].sort(), [base, `${base}.tmp`]);
  });
});

test('a .tmp cut short by the kill, with no claim beside it, is removed; with a claim beside it, the claim is read', () => {
  withDir((dir) => {
    const lone = deadPid();
    const loneTmp = `claim-${endpointKey(endpoint)}-${lone}.json.tmp`;
    writeFileSync(join(dir, loneTmp), '{"version":1,"pi');
    const other = deadPid();
    const base = `claim-${endpointKey(endpoint)}-${other}.json`;
    writeFileSync(join(dir, base), JSON.stringify(record(other, '2026-12-02T00:00:00.000Z')));
    writeFileSync(join(dir, `${base}.tmp`), '{"vers');
    const claims = staleClaims(endpoint, dir);
    assert.deepEqual(claims.map((c) => c.pid), [other]);
    assert.equal(claims[0]!.paths.length, 2, 'the cut tmp goes with its claim');
    assert.ok(!readdirSync(dir).includes(loneTmp), 'the lone cut tmp of a gone vmpm is removed');
  });
});

test('claims of a vmpm still running, and of other endpoints, are not reported', () => {
  withDir((dir) => {
    const mine = `claim-${endpointKey(endpoint)}-${process.pid}.json`;
    writeFileSync(join(dir, mine), JSON.stringify(record(process.pid, '2026-12-02T00:00:00.000Z')));
    const pid = deadPid();
    writeFileSync(join(dir, `claim-${endpointKey('unix:/other')}-${pid}.json`), JSON.stringify({ ...record(pid, '2026-12-02T00:00:00.000Z'), endpoint: 'unix:/other' }));
    assert.deepEqual(staleClaims(endpoint, dir), []);
    assert.equal(readdirSync(dir).length, 2, 'nothing of theirs is touched');
  });
});
