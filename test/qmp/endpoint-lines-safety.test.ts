import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertCommandAllowed, formatEndpoint, hmpErrorLine, parseEndpoint, QmpUnsafeCommandError } from '../../src/qmp';
import { LineReader, LineTooLongError } from '../../src/qmp/line-reader';
import { UsageError } from '../../src/util/errors';

test('endpoints: unix:PATH, bare paths and tcp:HOST:PORT parse; others are usage errors', () => {
  assert.deepEqual(parseEndpoint('unix:/run/qmp.sock'), { kind: 'unix', path: '/run/qmp.sock' });
  assert.deepEqual(parseEndpoint('/run/qmp.sock'), { kind: 'unix', path: '/run/qmp.sock' });
  assert.deepEqual(parseEndpoint('./qmp.sock'), { kind: 'unix', path: './qmp.sock' });
  assert.deepEqual(parseEndpoint('tcp:127.0.0.1:4444'), { kind: 'tcp', host: '127.0.0.1', port: 4444 });
  assert.deepEqual(parseEndpoint('tcp:[::1]:4444'), { kind: 'tcp', host: '::1', port: 4444 });
  for (const bad of ['', 'unix:', 'tcp:host', 'tcp:host:0', 'tcp:host:70000', 'serial:ttyS0', 'ws:x']) {
    assert.throws(() => parseEndpoint(bad), UsageError, bad);
  }
  for (const text of ['unix:/run/qmp.sock', 'tcp:localhost:4444', 'tcp:[::1]:4444']) assert.equal(formatEndpoint(parseEndpoint(text)), text);
});

test('line reader: splits lines across chunks, strips CR, keeps UTF-8 characters split between chunks intact', () => {
  const r = new LineReader(1024);
  const text = Buffer.from('{"a":"é"}\r\n{"b":1}\n{"c"', 'utf8');
  const split = text.indexOf(Buffer.from('é')) + 1; // in the middle of the 2-byte character
  assert.deepEqual(r.push(text.subarray(0, split)), []);
  assert.deepEqual(r.push(text.subarray(split)), ['{"a":"é"}', '{"b":1}']);
  assert.equal(r.buffered, 4);
  assert.deepEqual(r.push(Buffer.from(':2}\n')), ['{"c":2}']);
  assert.equal(r.buffered, 0);
});

test('line reader: an unfinished line over the limit throws at once and holds nothing', () => {
  const r = new LineReader(100);
  r.push(Buffer.alloc(60, 0x61));
  assert.throws(() => r.push(Buffer.alloc(60, 0x61)), LineTooLongError);
  assert.equal(r.buffered, 0);
  // A complete line over the limit in one chunk is refused too.
  assert.throws(() => new LineReader(10).push(Buffer.from('01234567890123\n')), LineTooLongError);
});

test('safety: reads, stop and dumps are always allowed; state changes need the allow-list', () => {
  const none = new Set<string>();
  for (const c of ['query-status', 'x-query-ramblock', 'qom-list', 'qom-get', 'stop', 'qmp_capabilities', 'dump-guest-memory', 'query-dump', 'pmemsave', 'memsave']) {
    assert.doesNotThrow(() => assertCommandAllowed(c, undefined, none), c);
  }
  for (const c of ['cont', 'system_reset', 'quit', 'device_add', 'inject-nmi', 'qom-set', 'migrate', 'whatever']) {
    assert.throws(() => assertCommandAllowed(c, undefined, none), QmpUnsafeCommandError, c);
    const args = c === 'migrate' ? { uri: 'unix:/run/vmpm/migration.sock' } : undefined;
    assert.doesNotThrow(() => assertCommandAllowed(c, args, new Set([c])), c);
  }
  // Even when allowed, migrate may only go to a unix: socket (vmpm's own background-snapshot listener).
  assert.throws(() => assertCommandAllowed('migrate', { uri: 'tcp:10.0.0.1:4444' }, new Set(['migrate'])), QmpUnsafeCommandError);
  assert.throws(() => assertCommandAllowed('migrate', { uri: 'exec:cat > /tmp/x' }, new Set(['migrate'])), QmpUnsafeCommandError);
  const hmp = (line: string, allow: string[] = []): void => assertCommandAllowed('human-monitor-command', { 'command-line': line }, new Set(allow));
  for (const line of ['info registers -a', '  info mtree -f', 'xp /4xw 0x20000', 'x /2i $pc', 'help']) assert.doesNotThrow(() => hmp(line), line);
  for (const line of ['mce 0 1 0x9400000000000000 0 0x20000 0', 'o /b 0x505 1', 'cont', 'c', 'quit', 'q', 'system_reset', 'nmi']) {
    assert.throws(() => hmp(line), QmpUnsafeCommandError, line);
  }
  assert.doesNotThrow(() => hmp('mce 0 1 0 0 0 0', ['mce']));
  assert.doesNotThrow(() => hmp('o /b 0x505 1', ['human-monitor-command']));
  assert.throws(() => hmp('o /b 0x505 1', ['mce']), QmpUnsafeCommandError);
});

test('HMP error detection looks at the first line only', () => {
  assert.equal(hmpErrorLine("\r\nunknown command: 'info x'\r\n"), "unknown command: 'info x'");
  assert.equal(hmpErrorLine('CPU 0: MCE capability is not enabled, raising triple fault'), undefined);
  assert.equal(hmpErrorLine('FlatView #0\r\n invalid region name here\r\n'), undefined);
  assert.equal(hmpErrorLine(''), undefined);
});
