import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPolicy, evaluate } from '../../src/watch/policy';
import { loadPolicyFile, parsePolicy } from '../../src/watch/policy-file';
import { UsageError } from '../../src/util/errors';

const ev = (event: string, data?: Record<string, unknown>) => ({ event, ...(data ? { data } : {}) });

describe('default watch policy', () => {
  const p = defaultPolicy();
  it('grades GUEST_PANICKED, GUEST_CRASHLOADED and WATCHDOG serious whatever their action', () => {
    for (const e of ['GUEST_PANICKED', 'GUEST_CRASHLOADED', 'WATCHDOG']) {
      assert.equal(evaluate(p, ev(e, { action: 'pause' })).grade, 'serious', e);
      assert.equal(evaluate(p, ev(e, { action: 'run' })).grade, 'serious', e);
    }
  });
  it('grades BLOCK_IO_ERROR serious when its action is stop, or while the VM is in io-error, else notable', () => {
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { action: 'stop' }), 'running').grade, 'serious');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { action: 'report' }), 'io-error').grade, 'serious');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { action: 'report' }), 'running').grade, 'notable');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { action: 'report' })).grade, 'notable');
  });
  it('grades MEMORY_FAILURE serious when action-required or when QEMU resets or exits, else notable', () => {
    const mf = (action: string, ar: boolean) => ev('MEMORY_FAILURE', { recipient: 'guest', action, flags: { 'action-required': ar, recursive: false } });
    assert.equal(evaluate(p, mf('inject', true)).grade, 'serious');
    assert.equal(evaluate(p, mf('reset', false)).grade, 'serious');
    assert.equal(evaluate(p, mf('fatal', false)).grade, 'serious');
    assert.equal(evaluate(p, mf('inject', false)).grade, 'notable');
    assert.equal(evaluate(p, mf('ignore', false)).grade, 'notable');
  });
  it('ignores routine events such as STOP, RESUME and unknown ones', () => {
    for (const e of ['STOP', 'RESUME', 'NIC_RX_FILTER_CHANGED', 'SOMETHING_NEW']) assert.equal(evaluate(p, ev(e)).grade, 'ignore');
  });
});

describe('policy file', () => {
  it('puts its rules before the defaults: a file can drop GUEST_PANICKED and keep the rest', () => {
    const p = parsePolicy({ rules: [{ event: 'GUEST_PANICKED', grade: 'ignore' }] }, 'site.json');
    assert.equal(evaluate(p, ev('GUEST_PANICKED', { action: 'pause' })).grade, 'ignore');
    assert.equal(evaluate(p, ev('WATCHDOG', { action: 'pause' })).grade, 'serious');
  });
  it('adds events, matches nested data with equals/in/not/prefix/exists, and can turn the defaults off', () => {
    const p = parsePolicy(
      {
        defaults: false,
        rules: [
          { event: 'MEMORY_FAILURE', match: { recipient: 'guest', 'flags.recursive': false }, grade: 'serious' },
          { event: ['BLOCK_IO_ERROR'], match: { device: { prefix: 'ide1' }, operation: { in: ['read', 'write'] } }, grade: 'serious' },
          { event: 'BLOCK_IO_ERROR', match: { nospace: { not: false } }, grade: 'notable' },
          { event: '*', match: { 'data-that-is-never-there': { exists: true } }, grade: 'serious' },
          { event: 'SHUTDOWN', runState: ['shutdown', 'paused'], grade: 'serious' },
        ],
      },
      'x.json',
    );
    assert.equal(evaluate(p, ev('MEMORY_FAILURE', { recipient: 'guest', action: 'inject', flags: { recursive: false } })).grade, 'serious');
    assert.equal(evaluate(p, ev('MEMORY_FAILURE', { recipient: 'hypervisor', flags: { recursive: false } })).grade, 'ignore');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { device: 'ide1-hd0', operation: 'read', nospace: false })).grade, 'serious');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { device: 'virtio0', operation: 'read', nospace: true })).grade, 'notable');
    assert.equal(evaluate(p, ev('BLOCK_IO_ERROR', { device: 'virtio0', operation: 'read', nospace: false })).grade, 'ignore');
    assert.equal(evaluate(p, ev('SHUTDOWN'), 'shutdown').grade, 'serious');
    assert.equal(evaluate(p, ev('SHUTDOWN'), 'running').grade, 'ignore');
    assert.equal(evaluate(p, ev('GUEST_PANICKED')).grade, 'ignore', 'defaults are off');
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown top-level key', { rule: [] }, /policy p\.json: unknown key "rule" \(expected one of defaults, rules, comment\)/],
    ['an unknown rule key', { rules: [{ event: 'WATCHDOG', grde: 'ignore' }] }, /rules\[0\]: unknown key "grde"/],
    ['a missing grade', { rules: [{ event: 'WATCHDOG' }] }, /rules\[0\]: missing "grade"/],
    ['a bad grade', { rules: [{ event: 'WATCHDOG', grade: 'critical' }] }, /rules\[0\]\.grade: "critical" is not one of serious, notable, ignore/],
    ['a lower-case event name', { rules: [{ event: 'guest_panicked', grade: 'ignore' }] }, /rules\[0\]\.event: "guest_panicked" is not a QMP event name/],
    ['an unknown matcher', { rules: [{ event: 'X', grade: 'ignore', match: { action: { regex: 'a' } } }] }, /rules\[0\]\.match\.action: unknown key "regex"/],
    ['two matchers in one', { rules: [{ event: 'X', grade: 'ignore', match: { a: { equals: 1, not: 2 } } }] }, /rules\[0\]\.match\.a: expected exactly one of/],
    ['a non-array rules', { rules: {} }, /rules: expected an array of rules/],
    ['defaults not boolean', { defaults: 'yes', rules: [] }, /defaults: expected true or false/],
    ['in without an array', { rules: [{ event: 'X', grade: 'ignore', match: { a: { in: 'x' } } }] }, /rules\[0\]\.match\.a\.in: expected an array/],
  ];
  for (const [what, doc, message] of bad) {
    it(`rejects ${what} with one line naming the key`, () => {
      assert.throws(() => parsePolicy(doc, 'p.json'), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, message);
        assert.equal(err.message.includes('\n'), false);
        return true;
      });
    });
  }

  it('reads a file, and reports unreadable or invalid JSON files in one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmpm-policy-'));
    try {
      const good = join(dir, 'good.json');
      writeFileSync(good, JSON.stringify({ rules: [{ event: 'GUEST_PANICKED', grade: 'ignore' }] }));
      assert.equal(evaluate(loadPolicyFile(good), ev('GUEST_PANICKED')).grade, 'ignore');
      writeFileSync(join(dir, 'broken.json'), '{"rules": [');
      assert.throws(() => loadPolicyFile(join(dir, 'broken.json')), /policy .*broken\.json: not valid JSON/);
      assert.throws(() => loadPolicyFile(join(dir, 'missing.json')), /policy .*missing\.json: cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps a JSON syntax error quoting a multi-line file on one line, and refuses a directory as a policy', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmpm-policy-'));
    try {
      writeFileSync(join(dir, 'text.json'), 'hello\nworld\n');
      assert.throws(
        () => loadPolicyFile(join(dir, 'text.json')),
        (err: Error) => err instanceof UsageError && /text\.json: not valid JSON: .*is not valid JSON/.test(err.message) && !err.message.includes('\n'),
      );
      assert.throws(() => loadPolicyFile(dir), /policy .*: cannot read: not a regular file$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts every sample policy shipped in samples/policies', () => {
    const samples = join(__dirname, '..', '..', '..', 'samples', 'policies');
    const files = readdirSync(samples).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 2);
    for (const f of files) assert.doesNotThrow(() => loadPolicyFile(join(samples, f)), f);
  });
});
