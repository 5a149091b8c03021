/**
 * Event JSON below is verbatim QEMU 7.2 output from the reference transcripts (05, 11b, 12, 13, 14,
 * linux-guest/variants) unless marked as built from the qapi schema (hyper-v/s390 info, WATCHDOG,
 * BLOCK_JOB_ERROR, which TCG guests here cannot raise on demand).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorRecordFromEvent, errorRecordsFromBlock, errorRecordsFromStatus, isoFromQmpTimestamp } from '../../src/capture/errors';

const event = (line: string) => JSON.parse(line) as { event: string; data?: unknown; timestamp: { seconds: number; microseconds: number } };

test('GUEST_PANICKED from pvpanic is critical, keeps the action, QEMU time with microseconds and the raw event', () => {
  const raw = event('{"timestamp": {"seconds": 1795954476, "microseconds": 838122}, "event": "GUEST_PANICKED", "data": {"action": "pause"}}');
  const r = errorRecordFromEvent(raw)!;
  assert.deepEqual(r, {
    time: '2026-11-29T12:14:36.838122Z',
    source: 'event',
    kind: 'guest-panicked',
    severity: 'critical',
    summary: 'GUEST_PANICKED (action pause)',
    raw,
  });
});

test('GUEST_PANICKED with hyper-v or s390 crash info names it in the summary (schema shapes, bigint-safe)', () => {
  const hv = errorRecordFromEvent({
    event: 'GUEST_PANICKED', timestamp: { seconds: 1, microseconds: 0 },
    data: { action: 'pause', info: { type: 'hyper-v', arg1: 30, arg2: 0, arg3: 0xfffff8000000n + 0xffff000000000000n, arg4: 1, arg5: 2 } },
  })!;
  assert.equal(hv.summary, 'GUEST_PANICKED (action pause): hyper-v crash parameters 0x1e 0x0 0xfffffffff8000000 0x1 0x2');
  const s390 = errorRecordFromEvent({
    event: 'GUEST_PANICKED', timestamp: { seconds: 1, microseconds: 0 },
    data: { action: 'pause', info: { type: 's390', core: 0, 'psw-mask': 0x2000180000000n, 'psw-addr': 0xfffn, reason: 'disabled-wait' } },
  })!;
  assert.equal(s390.summary, 'GUEST_PANICKED (action pause): s390 core 0x0 disabled-wait psw-mask 0x2000180000000 psw-addr 0xfff');
});

test('GUEST_CRASHLOADED (pvpanic value 2) is critical', () => {
  const r = errorRecordFromEvent(event('{"timestamp": {"seconds": 1795954480, "microseconds": 5}, "event": "GUEST_CRASHLOADED", "data": {"action": "run"}}'))!;
  assert.equal(r.kind, 'guest-crashloaded');
  assert.equal(r.severity, 'critical');
  assert.equal(r.summary, 'GUEST_CRASHLOADED (action run)');
  assert.equal(r.time, '2026-11-29T12:14:40.000005Z');
});

test('BLOCK_IO_ERROR with rerror=stop is critical and names the device; with report it is an error', () => {
  const stop = errorRecordFromEvent(event('{"timestamp": {"seconds": 1795954500, "microseconds": 1}, "event": "BLOCK_IO_ERROR", "data": {"device": "ide1-hd0", "nospace": false, "node-name": "#block493", "reason": "Input/output error", "operation": "read", "action": "stop"}}'))!;
  assert.equal(stop.kind, 'block-io-error');
  assert.equal(stop.severity, 'critical');
  assert.equal(stop.device, 'ide1-hd0');
  assert.equal(stop.summary, 'BLOCK_IO_ERROR on ide1-hd0: read Input/output error (action stop)');
  const report = errorRecordFromEvent(event('{"timestamp": {"seconds": 1795954500, "microseconds": 1}, "event": "BLOCK_IO_ERROR", "data": {"device": "", "node-name": "d2", "reason": "Input/output error", "operation": "read", "action": "report"}}'))!;
  assert.equal(report.severity, 'error');
  assert.equal(report.device, 'd2', '-blockdev devices have device "" and are named by node');
});

test('MEMORY_FAILURE: corrected (inject, optional) is a warning; action-required, reset or fatal is critical', () => {
  const mf = (action: string, required: boolean, recursive = false) =>
    errorRecordFromEvent(event(`{"timestamp": {"seconds": 1795954600, "microseconds": 0}, "event": "MEMORY_FAILURE", "data": {"flags": {"recursive": ${recursive}, "action-required": ${required}}, "recipient": "guest", "action": "${action}"}}`))!;
  assert.equal(mf('inject', false).severity, 'warning');
  assert.equal(mf('inject', false).summary, 'MEMORY_FAILURE for guest (action inject), action optional');
  assert.equal(mf('inject', true).severity, 'critical');
  assert.equal(mf('reset', false).severity, 'critical');
  assert.equal(mf('fatal', false).severity, 'critical');
  assert.equal(mf('ignore', false).severity, 'warning');
  assert.equal(mf('reset', true, true).summary, 'MEMORY_FAILURE for guest (action reset), action required, recursive');
  assert.equal(mf('reset', true).kind, 'memory-failure');
});

test('RESET and SHUTDOWN say who and why: guest resets and panics are warnings, orderly requests info', () => {
  const ev = (name: string, guest: boolean, reason: string) =>
    errorRecordFromEvent(event(`{"timestamp": {"seconds": 1795954618, "microseconds": 966522}, "event": "${name}", "data": {"guest": ${guest}, "reason": "${reason}"}}`))!;
  const triple = ev('RESET', true, 'guest-reset');
  assert.deepEqual([triple.kind, triple.severity, triple.summary], ['reset', 'warning', 'RESET by guest (reason guest-reset)']);
  assert.equal(ev('RESET', false, 'host-qmp-system-reset').severity, 'info');
  const panic = ev('SHUTDOWN', true, 'guest-panic');
  assert.deepEqual([panic.kind, panic.severity, panic.summary], ['shutdown', 'warning', 'SHUTDOWN by guest (reason guest-panic)']);
  assert.equal(ev('SHUTDOWN', false, 'host-qmp-quit').severity, 'info');
  assert.equal(ev('SHUTDOWN', true, 'guest-shutdown').severity, 'info');
});

test('WATCHDOG, BLOCK_JOB_ERROR and BLOCK_IMAGE_CORRUPTED (schema shapes) are recorded', () => {
  const ts = { seconds: 1795954700, microseconds: 0 };
  const wd = errorRecordFromEvent({ event: 'WATCHDOG', data: { action: 'pause' }, timestamp: ts })!;
  assert.deepEqual([wd.kind, wd.severity, wd.summary], ['watchdog', 'warning', 'WATCHDOG fired (action pause)']);
  const job = errorRecordFromEvent({ event: 'BLOCK_JOB_ERROR', data: { device: 'job0', operation: 'write', action: 'stop' }, timestamp: ts })!;
  assert.deepEqual([job.kind, job.severity, job.device], ['block-job-error', 'error', 'job0']);
  const corrupt = errorRecordFromEvent({ event: 'BLOCK_IMAGE_CORRUPTED', data: { device: '', 'node-name': 'qcow', msg: 'L2 table offset 0x1 unaligned', fatal: true }, timestamp: ts })!;
  assert.deepEqual([corrupt.severity, corrupt.device], ['critical', 'qcow']);
});

test('events that are not about trouble give no record', () => {
  for (const name of ['STOP', 'RESUME', 'DUMP_COMPLETED', 'POWERDOWN', 'SOMETHING_NEW']) {
    assert.equal(errorRecordFromEvent({ event: name, data: {}, timestamp: { seconds: 1, microseconds: 0 } }), undefined, name);
  }
});

test('odd input never throws: missing data, wrong types, an invalid timestamp falls back to now', () => {
  const r = errorRecordFromEvent({ event: 'BLOCK_IO_ERROR', data: 'nonsense', timestamp: { seconds: -1, microseconds: -1 } })!;
  assert.equal(r.summary, 'BLOCK_IO_ERROR on (unnamed device): i/o error');
  assert.ok(Math.abs(Date.parse(r.time) - Date.now()) < 60_000);
  assert.equal(isoFromQmpTimestamp({ seconds: 1.5, microseconds: 0 }), undefined);
  const p = errorRecordFromEvent({ event: 'GUEST_PANICKED', timestamp: { seconds: 0, microseconds: 999999 } })!;
  assert.equal(p.summary, 'GUEST_PANICKED');
  assert.equal(p.time, '1970-01-01T00:00:00.999999Z');
});

test('query-status: guest-panicked, internal-error, io-error, watchdog and shutdown are recorded; healthy states are not', () => {
  const at = '2026-11-29T14:00:00.000Z';
  const panicked = errorRecordsFromStatus({ status: 'guest-panicked', running: false }, at);
  assert.deepEqual(panicked, [{
    time: at, source: 'run-state', kind: 'guest-panicked', severity: 'critical',
    summary: 'run state guest-panicked: the guest panicked', raw: { status: 'guest-panicked', running: false },
  }]);
  assert.equal(errorRecordsFromStatus({ status: 'io-error', running: false }, at)[0]!.severity, 'error');
  assert.equal(errorRecordsFromStatus({ status: 'internal-error', running: false }, at)[0]!.severity, 'critical');
  assert.equal(errorRecordsFromStatus({ status: 'watchdog', running: false }, at)[0]!.kind, 'watchdog');
  assert.equal(errorRecordsFromStatus({ status: 'shutdown', running: false }, at)[0]!.severity, 'warning');
  for (const status of ['running', 'paused', 'prelaunch', 'suspended', 'save-vm']) {
    assert.deepEqual(errorRecordsFromStatus({ status, running: status === 'running' }, at), [], status);
  }
});

test('query-block: devices with io-status failed or nospace give records named by device or node; ok and absent do not', () => {
  // Trimmed from transcript 11b/12 (the real entries carry many more fields).
  const devices: unknown[] = [
    { 'io-status': 'ok', device: 'ide0-hd0', inserted: { 'node-name': '#block131', file: '$LAB/bootrd81.img' } },
    { 'io-status': 'failed', device: 'ide1-hd0', qdev: '/machine/unattached/device[19]', inserted: { 'node-name': '#block493', file: 'blkdebug:$LAB/blkdebug.cfg:$LAB/disk2.img' } },
    { 'io-status': 'nospace', device: '', inserted: { 'node-name': 'd2', file: `json:{${'x'.repeat(300)}}` } },
    { device: 'sd0', removable: true },
    'not an object',
  ];
  const at = '2026-11-29T14:00:00.000Z';
  const records = errorRecordsFromBlock(devices, at);
  assert.equal(records.length, 2);
  assert.deepEqual(
    { ...records[0]!, raw: undefined },
    {
      time: at, source: 'io-status', kind: 'block-io-status', severity: 'error', device: 'ide1-hd0',
      summary: 'block device ide1-hd0 io-status failed (blkdebug:$LAB/blkdebug.cfg:$LAB/disk2.img)', raw: undefined,
    },
  );
  assert.equal(records[0]!.raw, devices[1]);
  assert.equal(records[1]!.device, 'd2');
  assert.match(records[1]!.summary, /^block device d2 io-status nospace \(no space left on the host\) \(json:\{x+\.\.\.\)$/);
  assert.ok(records[1]!.summary.length < 200);
});
