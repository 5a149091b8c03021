/**
 * The claim a capture writes names the guest by its UUID from the first change on (claim.ts): a vmpm
 * killed at any change, even the first migration setting a background snapshot turns on while the
 * guest still runs, leaves a claim that a vmpm reaching the same guest through the other transport
 * (libvirt domain <-> QMP socket) finds by UUID. Fake QEMU with a background snapshot; the claim file
 * is read as each change command reaches QEMU (the claim is written before it is sent).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture, type CaptureOptions } from '../../src/capture';
import type { ClaimRecord } from '../../src/capture/claim';
import { QmpClient } from '../../src/qmp';
import { snapshotStream, x86CpuTail } from '../formats/migration-builder';
import { startFakeQemu, type FaultHook } from '../helpers/fake-qemu';
import { fakeSnapshot } from '../helpers/fake-snapshot';

const runtime = mkdtempSync(join(tmpdir(), 'vmpm-claim-uuid-runtime-'));
process.env.VMPM_RUNTIME_DIR = runtime;
const dirs: string[] = [runtime];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What the fake QEMU answers to query-uuid. */
const FAKE_UUID = '11111111-2222-3333-4444-555555555555';
const CHANGES = new Set(['stop', 'migrate-set-capabilities', 'migrate-set-parameters', 'migrate']);
const ALLOW = ['cont', 'migrate', 'migrate-set-capabilities', 'migrate-set-parameters', 'migrate_cancel'];

/** Runs one capture; for every state-changing command, the uuid of the claim on disk as QEMU receives it. */
async function claimsAtChanges(options: Partial<CaptureOptions>, fault?: FaultHook): Promise<{ seen: Array<{ step: string; uuid: unknown }>; commands: string[]; result: unknown }> {
  const seen: Array<{ step: string; uuid: unknown }> = [];
  const watch: FaultHook = (cmd, conn, state, step) => {
    if (CHANGES.has(step)) {
      const files = readdirSync(runtime).filter((n) => n.startsWith('claim-') && n.endsWith('.json'));
      assert.equal(files.length, 1, `${step}: one claim written before it was sent (${files.join(', ')})`);
      seen.push({ step, uuid: (JSON.parse(readFileSync(join(runtime, files[0]!), 'utf8')) as ClaimRecord).uuid });
    }
    return fault ? fault(cmd, conn, state, step) : false;
  };
  const qemu = await startFakeQemu({ fault: watch });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-claim-uuid-'));
  dirs.push(dir);
  const client = await QmpClient.connect(qemu.endpoint, { allow: ALLOW, connectTimeoutMs: 5000 });
  try {
    const result = await capture(client, { output: join(dir, 'c.vmpm'), quiesce: 'stop-and-restore', memory: 'pmemsave', ...options }).catch((e: unknown) => e);
    return { seen, commands: qemu.state.commands, result };
  } finally {
    await client.close().catch(() => undefined);
    await qemu.stop();
  }
}

test('background snapshot: the claim names the guest UUID already when the first migration setting is changed (before the metadata), and query-uuid is asked once', async () => {
  const snap = fakeSnapshot({ setupMs: 50, stream: snapshotStream('pc.ram', 4096, x86CpuTail({ rax: 1n })) });
  const r = await claimsAtChanges({ memory: 'snapshot' }, snap.fault);
  assert.ok(!(r.result instanceof Error), String(r.result));
  // The settings turned on, the migrate, then the settings put back.
  assert.deepEqual(r.seen.map((s) => s.step), ['migrate-set-capabilities', 'migrate-set-parameters', 'migrate', 'migrate-set-capabilities', 'migrate-set-parameters']);
  for (const s of r.seen) assert.equal(s.uuid, FAKE_UUID, `claim at ${s.step}`);
  assert.equal(r.commands.filter((c) => c === 'query-uuid').length, 1, r.commands.join(', '));
  assert.ok(r.commands.indexOf('query-uuid') < r.commands.indexOf('migrate-set-capabilities'));
  assert.deepEqual(readdirSync(runtime), [], 'nothing outstanding: the claim is gone');
});

test('pmemsave: the claim names the guest UUID at the stop, and query-uuid is asked once', async () => {
  const r = await claimsAtChanges({ memory: 'pmemsave' });
  assert.ok(!(r.result instanceof Error), String(r.result));
  assert.deepEqual(r.seen, [{ step: 'stop', uuid: FAKE_UUID }]);
  assert.equal(r.commands.filter((c) => c === 'query-uuid').length, 1, r.commands.join(', '));
  assert.deepEqual(readdirSync(runtime), []);
});
