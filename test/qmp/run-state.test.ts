import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RUN_STATES, pausingEventOf, runStateRule, statePausedBy, statusAfterEvent } from '../../src/qmp';

test('run-state table: one rule per status, and every pausing event maps back to its status', () => {
  const statuses = RUN_STATES.map((r) => r.status);
  assert.equal(new Set(statuses).size, statuses.length);
  for (const rule of RUN_STATES.filter((r) => r.pausedBy)) {
    const e = pausingEventOf(rule.status)!;
    assert.equal(statePausedBy(e), rule.status);
    assert.equal(statusAfterEvent('running', e), rule.status);
  }
  assert.deepEqual(RUN_STATES.filter((r) => r.pausedBy).map((r) => r.status), ['guest-panicked', 'io-error', 'watchdog']);
});

test('run-state transitions: RESUME runs, STOP pauses only a running or unknown VM, other actions change nothing', () => {
  assert.equal(statusAfterEvent('guest-panicked', { event: 'RESUME' }), 'running');
  assert.equal(statusAfterEvent('running', { event: 'STOP' }), 'paused');
  assert.equal(statusAfterEvent(undefined, { event: 'STOP' }), 'paused');
  assert.equal(statusAfterEvent('guest-panicked', { event: 'STOP' }), 'guest-panicked');
  assert.equal(statusAfterEvent('running', { event: 'GUEST_PANICKED', data: { action: 'poweroff' } }), 'running');
  assert.equal(statusAfterEvent('running', { event: 'BLOCK_IO_ERROR', data: { action: 'report' } }), 'running');
  assert.equal(statusAfterEvent('running', { event: 'SHUTDOWN', data: { guest: true } }), 'running');
  assert.equal(runStateRule('shutdown')?.pausedBy, undefined);
  assert.deepEqual(runStateRule('io-error')?.explainedBy, ['block-io-error']);
  assert.equal(runStateRule('no-such-state'), undefined);
});
