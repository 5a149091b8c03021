import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { requireTools } from '../helpers/requirements';
import { runCli } from '../helpers/cli';
import { buildBundle, PC_RANGES, tempDir } from '../../bench/lib/build-bundle';
import { CHUNK_SIZE, formatIdentity, formatRecipient, generateIdentity } from '../../src/formats/age';
import { bech32Decode, bech32Encode } from '../../src/formats/age/bech32';

/**
 * seal/unseal against the real `age` CLI both ways, on a real bundle and on payloads that end
 * exactly on, just before and just after a 64 KiB chunk boundary (where STREAM's final flag matters).
 */
const skip = requireTools('age', 'age-keygen');

function keygen(dir: string, name: string): { key: string; recipient: string } {
  const key = `${dir}/${name}`;
  const out = execFileSync('age-keygen', ['-o', key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const recipient = (out + readFileSync(key, 'utf8')).match(/age1[0-9a-z]+/)![0];
  return { key, recipient };
}

test('bech32 keys: our encoding matches age-keygen, and a changed character is refused', { skip }, () => {
  const t = tempDir('vmpm-age-');
  try {
    const k = keygen(t.dir, 'k.txt');
    const secretLine = readFileSync(k.key, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    const d = bech32Decode(secretLine)!;
    assert.equal(d.hrp, 'age-secret-key-');
    assert.equal(formatIdentity(d.data), secretLine);
    const pub = bech32Decode(k.recipient)!;
    assert.equal(bech32Encode('age', pub.data), k.recipient);
    const flipped = k.recipient.slice(0, 10) + (k.recipient[10] === 'q' ? 'p' : 'q') + k.recipient.slice(11);
    assert.equal(bech32Decode(flipped), undefined);
  } finally {
    t.cleanup();
  }
});

test('seal/unseal round trips with vmpm and with the age CLI, both ways', { skip, timeout: 120_000 }, async () => {
  const t = tempDir('vmpm-age-');
  try {
    const a = keygen(t.dir, 'a.txt');
    const b = keygen(t.dir, 'b.txt');
    const bundle = t.path('case.vmpm');
    await buildBundle(bundle, { ranges: PC_RANGES.map((r) => ({ ...r, unique: true })) });
    const inputs: Array<[string, Buffer]> = [['case.vmpm', readFileSync(bundle)]];
    for (const n of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE]) inputs.push([`r${n}`, randomBytes(n)]);
    for (const [name, data] of inputs) {
      const plain = t.path(name);
      writeFileSync(plain, data);
      // vmpm -> age -d, for both recipients
      const r = await runCli(['seal', plain, '-r', a.recipient, '--recipient', b.recipient, '-o', `${plain}.age`]);
      assert.equal(r.code, 0, r.stderr);
      for (const k of [a, b]) assert.ok(execFileSync('age', ['-d', '-i', k.key, `${plain}.age`], { maxBuffer: 1 << 28 }).equals(data), `${name} via age -d`);
      // vmpm -> vmpm
      const u = await runCli(['unseal', `${plain}.age`, '--identity', b.key, '-o', `${plain}.out1`]);
      assert.equal(u.code, 0, u.stderr);
      assert.ok(readFileSync(`${plain}.out1`).equals(data));
      // age -r -> vmpm
      execFileSync('age', ['-r', a.recipient, '-o', `${plain}.byage`, plain]);
      const v = await runCli(['unseal', `${plain}.byage`, '-i', a.key, '-o', `${plain}.out2`]);
      assert.equal(v.code, 0, v.stderr);
      assert.ok(readFileSync(`${plain}.out2`).equals(data));
    }
    const verify = await runCli(['verify', t.path('case.vmpm.out2')]);
    assert.equal(verify.code, 0, verify.stdout);
  } finally {
    t.cleanup();
  }
});

test('unseal refuses a wrong identity, a truncated and a modified file in one line, writing nothing', { skip, timeout: 120_000 }, async () => {
  const t = tempDir('vmpm-age-');
  try {
    const a = keygen(t.dir, 'a.txt');
    const other = keygen(t.dir, 'other.txt');
    const plain = t.path('data');
    writeFileSync(plain, randomBytes(5 * CHUNK_SIZE + 123));
    const sealed = t.path('data.age');
    assert.equal((await runCli(['seal', plain, '-r', a.recipient, '-o', sealed])).code, 0);
    const bytes = readFileSync(sealed);
    const headerLength = bytes.indexOf('\n---') + 1 + 48;
    const damaged: Array<[string, Buffer, RegExp]> = [
      ['wrong-identity', bytes, /no identity given matches .* sealed to 1 X25519 recipient\(s\), none of them yours/],
      // cut exactly at a chunk boundary: every remaining chunk authenticates, but none is final
      ['cut-boundary', bytes.subarray(0, headerLength + 16 + 2 * (CHUNK_SIZE + 16)), /truncated: the age payload ends without its final chunk/],
      ['cut-middle', bytes.subarray(0, bytes.length - 1000), /truncated, damaged or was modified: payload chunk 4/],
      ['cut-header', bytes.subarray(0, 40), /truncated inside its age header/],
      ['payload-byte', flip(bytes, headerLength + 16 + 3 * (CHUNK_SIZE + 16) + 5), /payload chunk 3 .* fails authentication/],
      ['header-byte', flip(bytes, headerLength - 10), /header was modified|malformed age header/],
      ['not-age', readFileSync(plain), /is not an age-encrypted file/],
      ['trailing', Buffer.concat([bytes, Buffer.from('x')]), /truncated, damaged or was modified|data after its final chunk/],
    ];
    for (const [name, data, re] of damaged) {
      const file = t.path(`${name}.age`);
      writeFileSync(file, data);
      const key = name === 'wrong-identity' ? other.key : a.key;
      const r = await runCli(['unseal', file, '-i', key, '-o', t.path(`${name}.out`)]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, re, name);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(!existsSync(t.path(`${name}.out`)), `${name}: no output`);
      // age itself agrees that these are not valid (except the mis-addressed one, which a's key opens)
      if (name !== 'wrong-identity') assert.throws(() => execFileSync('age', ['-d', '-i', a.key, file], { stdio: 'pipe' }), name);
    }
    assert.deepEqual(readdirSync(t.dir).filter((n) => n.includes('.partial-')), [], 'no temporary files left');
    // an existing output is never overwritten without --force
    writeFileSync(t.path('exists'), 'keep');
    const r = await runCli(['unseal', sealed, '-i', a.key, '-o', t.path('exists')]);
    assert.equal(r.code, 1);
    assert.equal(readFileSync(t.path('exists'), 'utf8'), 'keep');
    // a malformed recipient is one line
    const bad = await runCli(['seal', plain, '-r', 'age1notakey', '-o', t.path('x.age')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^vmpm: "age1notakey" is not an age X25519 recipient/);
  } finally {
    t.cleanup();
  }
});

test('a generated identity opens what was sealed to its recipient (library level)', { skip }, async () => {
  const id = generateIdentity();
  const t = tempDir('vmpm-age-');
  try {
    writeFileSync(t.path('id.txt'), `# test\n${formatIdentity(id.secret)}\n`);
    writeFileSync(t.path('p'), 'hello');
    execFileSync('age', ['-r', formatRecipient(id.recipient), '-o', t.path('p.age'), t.path('p')]);
    assert.equal(execFileSync('age', ['-d', '-i', t.path('id.txt'), t.path('p.age')], { encoding: 'utf8' }), 'hello');
  } finally {
    t.cleanup();
  }
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 0x01;
  return c;
}
