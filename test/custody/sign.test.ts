import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBootSectorGuest, type LaunchedQemu } from '../../src/guest';
import { requireTools } from '../helpers/requirements';
import { runCli } from '../helpers/cli';
import { buildBundle, tempDir } from '../../bench/lib/build-bundle';
import { extraQmp, startWatch, withClient, type WatchProcess } from '../watch/helpers';

/**
 * SSHSIG signatures checked by the real ssh-keygen both ways, and the forgery the issue describes:
 * a trailer rewritten with every digest recomputed passes `verify` but not the signature.
 */
const skip = requireTools('ssh-keygen');
const t = tempDir('vmpm-sign-');
after(() => t.cleanup());

function keygen(name: string, type = 'ed25519', passphrase = ''): string {
  const key = t.path(name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', `${name}@test`, '-f', key]);
  return key;
}

function sshVerify(file: string, sig: string, pub: string): { ok: boolean; out: string } {
  const allowed = t.path(`allowed-${Math.random().toString(16).slice(2)}`);
  writeFileSync(allowed, `case-signer ${readFileSync(pub, 'utf8')}`);
  const r = spawnSync('ssh-keygen', ['-Y', 'verify', '-n', 'vmpm', '-I', 'case-signer', '-f', allowed, '-s', sig], { input: readFileSync(file) });
  return { ok: r.status === 0, out: `${r.stdout.toString()}${r.stderr.toString()}` };
}

/** Moves range 0 to another guest-physical address and recomputes the trailer and file digests. */
function forgeTrailer(src: string, dst: string, delta: bigint): void {
  const b = Buffer.from(readFileSync(src));
  const foot = b.length - 96;
  const T = Number(b.readBigUInt64LE(foot));
  const L = Number(b.readBigUInt64LE(foot + 8));
  const S = b.readUInt32LE(T);
  const rangeAt = T + 32 + 64 * S;
  b.writeBigUInt64LE(b.readBigUInt64LE(rangeAt) + delta, rangeAt);
  createHash('sha256').update(b.subarray(T, T + L)).digest().copy(b, foot + 16);
  createHash('sha256').update(b.subarray(0, foot)).digest().copy(b, foot + 48);
  writeFileSync(dst, b);
}

test('ssh-keygen -Y verify accepts vmpm sign; vmpm verify accepts ssh-keygen -Y sign; info shows who signed', { skip }, async () => {
  const key = keygen('host');
  const bundle = t.path('case.vmpm');
  await buildBundle(bundle, { ranges: [{ start: 0x100000n, length: 0x40000n, unique: true }] });
  const s = await runCli(['sign', bundle, '--key', key]);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^signed .*case\.vmpm with SHA256:\S+ \(host@test\) -> .*case\.vmpm\.sig\n$/);
  const byKeygen = sshVerify(bundle, `${bundle}.sig`, `${key}.pub`);
  assert.ok(byKeygen.ok, byKeygen.out);
  assert.match(byKeygen.out, /Good "vmpm" signature for case-signer with ED25519 key/);

  const v = await runCli(['verify', bundle, '--signer', `${key}.pub`]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /signature OK: .*case\.vmpm\.sig by SHA256:\S+ \(host@test\), the signer given, holds/);
  const info = await runCli(['info', bundle]);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /Signature\s+holds: .*case\.vmpm\.sig by SHA256:/);

  // the other way round: ssh-keygen signs, vmpm verifies (signer given as an allowed_signers file)
  const other = t.path('other.vmpm');
  await buildBundle(other, {});
  execFileSync('ssh-keygen', ['-Y', 'sign', '-n', 'vmpm', '-f', key, other], { stdio: 'pipe' });
  const allowed = t.path('allowed_signers');
  writeFileSync(allowed, `# ops\nvm-host-1,vm-host-2 namespaces="vmpm" ${readFileSync(`${key}.pub`, 'utf8')}`);
  const v2 = await runCli(['verify', other, '--signature', `${other}.sig`, '--signer', allowed, '--json']);
  assert.equal(v2.code, 0, v2.stdout + v2.stderr);
  const j = JSON.parse(v2.stdout) as { ok: boolean; signature: { holds: boolean; trusted: boolean; signer: string } };
  assert.deepEqual([j.ok, j.signature.holds, j.signature.trusted, j.signature.signer], [true, true, true, 'vm-host-1,vm-host-2']);
});

test('a flipped byte, a forged trailer with recomputed digests, another key: the signature fails', { skip }, async () => {
  const key = keygen('signer');
  const mallory = keygen('mallory');
  const bundle = t.path('orig.vmpm');
  await buildBundle(bundle, { ranges: [{ start: 0x100000n, length: 0x40000n, unique: true }] });
  assert.equal((await runCli(['sign', bundle, '-k', key])).code, 0);
  const sig = `${bundle}.sig`;

  const flipped = t.path('flipped.vmpm');
  const b = Buffer.from(readFileSync(bundle));
  b[100]! ^= 0x40;
  writeFileSync(flipped, b);
  const f = await runCli(['verify', flipped, '--signature', sig, '--signer', `${key}.pub`]);
  assert.equal(f.code, 1);
  assert.match(f.stdout, /signature FAILED: .*the signature does not match .*flipped\.vmpm: the file was changed after it was signed/);
  assert.ok(!sshVerify(flipped, sig, `${key}.pub`).ok, 'ssh-keygen agrees');

  const forged = t.path('forged.vmpm');
  forgeTrailer(bundle, forged, 0x10000000n);
  const plain = await runCli(['verify', forged]);
  assert.equal(plain.code, 0, `the forgery passes the unkeyed digests: ${plain.stdout}`);
  assert.match(plain.stdout, /result\s+OK/);
  const signed = await runCli(['verify', forged, '--signature', sig, '--signer', `${key}.pub`]);
  assert.equal(signed.code, 1, signed.stdout);
  assert.match(signed.stdout, /signature FAILED: .*does not match/);
  assert.ok(!sshVerify(forged, sig, `${key}.pub`).ok);
  // info beside: the signature next to a forged file says it does not hold
  writeFileSync(`${forged}.sig`, readFileSync(sig));
  const info = await runCli(['info', forged, '--no-verify']);
  assert.match(info.stdout, /Signature\s+.*DOES NOT HOLD/);

  // Mallory re-signs the forgery with her own key: it holds for her key, but she is not the signer given
  assert.equal((await runCli(['sign', forged, '-k', mallory, '--force'])).code, 0);
  const m = await runCli(['verify', forged, '--signer', `${key}.pub`]);
  assert.equal(m.code, 1);
  assert.match(m.stdout, /signature FAILED: .*the signature is by another key \(SHA256:\S+\), not by the signer given \(SHA256:\S+\)/);
  // --signature without a trusted signer is a usage error: any key can sign
  const u = await runCli(['verify', forged, '--signature', `${forged}.sig`]);
  assert.equal(u.code, 2);
});

test('keys vmpm cannot sign with are refused in one line', { skip }, async () => {
  const file = t.path('k.vmpm');
  await buildBundle(file, {});
  const cases: Array<[string, RegExp]> = [
    [keygen('enc', 'ed25519', 'secret words'), /is encrypted with a passphrase \(aes256-ctr\); vmpm needs an unencrypted key/],
    [keygen('rsa', 'rsa'), /is an ssh-rsa key; vmpm signs with Ed25519 keys only/],
    [`${keygen('pubonly')}.pub`, /is not an OpenSSH private key/],
    [t.path('missing'), /cannot read signing key .*missing: no such file or directory/],
  ];
  for (const [key, re] of cases) {
    const r = await runCli(['sign', file, '--key', key, '--force']);
    assert.equal(r.code, 1, key);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('capture --sign-key and watch --sign-key sign the bundle the moment it is written', { skip: skip || requireTools('qemu-system-x86_64'), timeout: 120_000 }, async () => {
  const key = keygen('hostkey');
  const cleanups: Array<LaunchedQemu | WatchProcess> = [];
  try {
    const guest = await launchBootSectorGuest({});
    cleanups.push(guest);
    const out = join(guest.dir, 'c.vmpm');
    const c = await runCli(['capture', '--qmp', guest.endpoint, '-o', out, '--no-memory', '--sign-key', key]);
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /signed with SHA256:\S+ -> .*c\.vmpm\.sig/);
    assert.ok(sshVerify(out, `${out}.sig`, `${key}.pub`).ok);
    const bad = await runCli(['capture', '--qmp', guest.endpoint, '-o', join(guest.dir, 'd.vmpm'), '--sign-key', `${key}.pub`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not an OpenSSH private key/);

    const dir = t.path('watch');
    execFileSync('mkdir', ['-p', dir]);
    const watchSock = join(dir, 'w.sock');
    const panicking = await launchBootSectorGuest({ startPaused: true, extraArgs: extraQmp(watchSock) });
    cleanups.push(panicking);
    const watch = startWatch(['--qmp', `unix:${watchSock}`, '--out-dir', dir, '--no-memory', '--sign-key', key, '--exec', 'echo "sig=$VMPM_SIGNATURE"']);
    cleanups.push(watch);
    await watch.logged('connected to QEMU');
    await withClient(panicking.endpoint, (cl) => cl.execute('cont'));
    const n = (await watch.notification(1)) as { bundle: string; signature: string; at: string };
    // The incident line names the signature being written without waiting for it; a `signature`
    // line follows once it is written, and only then does the hook run (so the file exists for it).
    assert.equal(n.signature, `${n.bundle}.sig`);
    await watch.logged(`sig=${n.bundle}.sig`);
    assert.deepEqual(watch.lines.map((l) => l.type), ['incident', 'signature']);
    const s = watch.lines[1]!;
    assert.equal(s.bundle, n.bundle);
    assert.equal(s.signature, n.signature);
    assert.ok(String(s.at) >= n.at);
    assert.ok(sshVerify(n.bundle, n.signature, `${key}.pub`).ok);
  } finally {
    for (const x of cleanups.reverse()) await x.kill();
  }
});
