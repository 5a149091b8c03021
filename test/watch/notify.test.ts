import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hookEnvironment, notificationLine, runHook, type IncidentNotification } from '../../src/watch/notify';

const sample: IncidentNotification = {
  type: 'incident',
  at: '2026-11-29T14:00:00.000Z',
  vm: { endpoint: 'unix:/run/vm1.qmp', name: 'vm1', uuid: '11111111-2222-3333-4444-555555555555' },
  trigger: { event: 'GUEST_PANICKED', source: 'event', time: '2026-11-29T13:59:59.900000Z', summary: 'GUEST_PANICKED (action pause)', data: { action: 'pause' } },
  events: [{ event: 'GUEST_PANICKED', time: '2026-11-29T13:59:59.900000Z' }],
  stoppedBy: 'qemu',
  stopMs: null,
  bundle: '/var/lib/vmpm/vm1.vmpm',
  sha256: 'ab'.repeat(32),
  size: 1234,
  captureMs: 80,
  failoverSafe: true,
  lost: [],
};

describe('incident notification', () => {
  it('is one line of JSON with the facts HA software needs', () => {
    const line = notificationLine(sample);
    assert.equal(line.includes('\n'), false);
    const back = JSON.parse(line) as IncidentNotification;
    assert.equal(back.vm.name, 'vm1');
    assert.equal(back.trigger.event, 'GUEST_PANICKED');
    assert.equal(back.bundle, '/var/lib/vmpm/vm1.vmpm');
    assert.equal(back.failoverSafe, true);
  });
  it('gives the hook the same facts as VMPM_* variables', () => {
    const env = hookEnvironment(sample);
    assert.equal(env.VMPM_EVENT, 'GUEST_PANICKED');
    assert.equal(env.VMPM_BUNDLE, '/var/lib/vmpm/vm1.vmpm');
    assert.equal(env.VMPM_SHA256, 'ab'.repeat(32));
    assert.equal(env.VMPM_FAILOVER_SAFE, '1');
    assert.equal(env.VMPM_VM_UUID, '11111111-2222-3333-4444-555555555555');
    assert.equal(JSON.parse(env.VMPM_NOTIFICATION!).sha256, 'ab'.repeat(32));
  });
});

describe('--exec hook', () => {
  it('runs with the VMPM_* environment and reports its exit code', async () => {
    const r = await runHook('echo "$VMPM_EVENT $VMPM_FAILOVER_SAFE"; exit 3', hookEnvironment(sample), 5000);
    assert.equal(r.code, 3);
    assert.equal(r.output, 'GUEST_PANICKED 1');
    assert.equal(r.timedOut, false);
  });
  it('kills a hook (and its children) that outlives the timeout', async () => {
    const t = performance.now();
    const r = await runHook('sleep 30 & sleep 30; echo never', {}, 200);
    assert.equal(r.timedOut, true);
    assert.equal(r.code, null);
    assert.ok(performance.now() - t < 5000);
    assert.equal(r.output.includes('never'), false);
  });
  it('resolves (never rejects) for a command that does not exist', async () => {
    const r = await runHook('/nonexistent/hook-binary', {}, 5000);
    assert.equal(r.code, 127);
  });
});
