import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonSyntaxError, parseJson, stringifyJson } from '../../src/qmp';

test('integers beyond 2^53 parse to exact bigints; safe integers and floats stay numbers', () => {
  assert.deepEqual(parseJson('[9007199254740991, 9007199254740992, 18446744073709551615, -9223372036854775808, 1.5, 1e3, -0]'), [
    9007199254740991,
    9007199254740992n,
    18446744073709551615n,
    -9223372036854775808n,
    1.5,
    1000,
    -0,
  ]);
});

test('parseJson agrees with JSON.parse on ordinary QMP messages', () => {
  const samples = [
    '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}',
    '{"return": "unknown command: \'info nosuchthing\'\\r\\n", "id": "c5"}',
    '{"timestamp": {"seconds": 1795954803, "microseconds": 755909}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
    '{"a": "\\u00e9\\ud83d\\ude00\\"\\\\\\/", "b": [true, false, null, {}], "c": ""}',
  ];
  for (const s of samples) assert.deepEqual(parseJson(s), JSON.parse(s));
});

test('a "__proto__" key is plain data and does not change the prototype', () => {
  const v = parseJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('invalid JSON is a JsonSyntaxError with the offset, never a crash', () => {
  for (const bad of ['', '{', '{"a":}', '[1,]', '{"a" 1}', 'nul', '"abc', '"\\x"', '01', '{"a":1} x', '"a\u0001"']) {
    assert.throws(() => parseJson(bad), JsonSyntaxError, bad);
  }
  assert.throws(() => parseJson('['.repeat(100_000)), /nested deeper/);
});

test('stringifyJson writes bigints as bare integers and otherwise matches JSON.stringify', () => {
  assert.equal(stringifyJson({ val: -140737488224256n, big: 0xffff800000020000n }), '{"val":-140737488224256,"big":18446603336221327360}');
  const plain = { a: [1, 'x', null, { b: true }], c: undefined, d: 'é"\n' };
  assert.equal(stringifyJson(plain), JSON.stringify(plain));
  assert.equal(stringifyJson(plain, 2), JSON.stringify(plain, null, 2));
  assert.equal(stringifyJson({ when: new Date(0) }), '{"when":"1970-01-01T00:00:00.000Z"}');
  assert.throws(() => stringifyJson({ x: NaN }), TypeError);
});

test('parse and stringify round-trip 64-bit values exactly', () => {
  const text = '{"max":18446744073709551615,"min":-9223372036854775808,"n":[1,2]}';
  assert.equal(stringifyJson(parseJson(text)), text);
});
