/**
 * OpenSSH Ed25519 keys: the private key file (PROTOCOL.key, "openssh-key-v1", unencrypted only),
 * public keys as authorized_keys / allowed_signers lines, and ssh-keygen's SHA256 fingerprints.
 * Node's crypto signs and verifies; raw keys enter it through their RFC 8410 DER prefixes.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { FormatError } from '../errors';
import { VmpmError } from '../../util/errors';
import { readString, readText, sshReader, sshString } from './wire';

export const ED25519 = 'ssh-ed25519';
const AUTH_MAGIC = Buffer.from('openssh-key-v1\0', 'latin1');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PEM_RE = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/;

export interface Ed25519PublicKey {
  /** 32 raw bytes. */
  key: Buffer;
  /** Free text after the key (comment), or the principals of an allowed_signers line. */
  comment?: string;
  principals?: string[];
}

export interface Ed25519PrivateKey {
  public: Ed25519PublicKey;
  keyObject: KeyObject;
}

/** The SSH wire blob of an Ed25519 public key: string "ssh-ed25519", string key. */
export function publicKeyBlob(key: Buffer): Buffer {
  return Buffer.concat([sshString(ED25519), sshString(key)]);
}

/** ssh-keygen -l's fingerprint: "SHA256:" + unpadded base64 of SHA-256(blob). */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob(key)).digest('base64').replace(/=+$/, '')}`;
}

export function publicKeyObject(key: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519, key]), format: 'der', type: 'spki' });
}

/** The key type and payload of a public key blob (any type: callers word the refusal of non-Ed25519). */
export function parsePublicKeyBlob(blob: Buffer, format: string, file?: string): { type: string; key?: Buffer } {
  const r = sshReader(blob, format, file);
  const type = readText(r, 'public key type');
  if (type !== ED25519) return { type };
  const key = readString(r, 'ed25519 public key');
  if (key.length !== 32) throw r.error(`an ssh-ed25519 key has ${key.length} bytes, expected 32`);
  return { type, key };
}

/** Parses an unencrypted OpenSSH Ed25519 private key file's text. `file` names it in messages. */
export function parsePrivateKey(text: string, file: string): Ed25519PrivateKey {
  const m = PEM_RE.exec(text);
  if (!m) {
    const other = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
    throw new VmpmError(
      other
        ? `${file} is a ${other} file, not an OpenSSH private key (convert it with ssh-keygen -p -f ${file}, or use an ssh-ed25519 key)`
        : `${file} is not an OpenSSH private key (expected -----BEGIN OPENSSH PRIVATE KEY-----)`,
    );
  }
  const data = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const format = 'OpenSSH private key';
  const r = sshReader(data, format, file);
  if (!r.has(0, AUTH_MAGIC.length) || !r.bytes(0, AUTH_MAGIC.length).equals(AUTH_MAGIC)) throw r.error('no openssh-key-v1 magic');
  r.pos = AUTH_MAGIC.length;
  const cipher = readText(r, 'ciphername');
  readText(r, 'kdfname');
  readString(r, 'kdfoptions');
  const n = r.nextU32('number of keys');
  if (n !== 1) throw r.error(`holds ${n} keys; vmpm reads files with exactly one`);
  const pub = parsePublicKeyBlob(readString(r, 'public key'), format, file);
  if (pub.type !== ED25519) throw new VmpmError(`${file} is an ${pub.type} key; vmpm signs with Ed25519 keys only (ssh-keygen -t ed25519)`);
  if (cipher !== 'none') {
    throw new VmpmError(`${file} is encrypted with a passphrase (${cipher}); vmpm needs an unencrypted key (a host key, or a copy decrypted with ssh-keygen -p)`);
  }
  const p = sshReader(readString(r, 'private keys'), format, file);
  const check1 = p.nextU32('checkint');
  if (p.nextU32('checkint') !== check1) throw p.error('the two check integers differ (damaged key)');
  const type = readText(p, 'key type');
  if (type !== ED25519) throw p.error(`private key type ${type} does not match its public key`);
  const key = readString(p, 'public key');
  const secret = readString(p, 'private key');
  const comment = readText(p, 'comment');
  if (key.length !== 32 || secret.length !== 64 || !secret.subarray(32).equals(key) || !key.equals(pub.key!)) {
    throw p.error('the Ed25519 key pair is inconsistent (damaged key)');
  }
  const keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, secret.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  const derived = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
  if (!Buffer.from(derived.subarray(derived.length - 32)).equals(key)) throw p.error('the private key does not produce its public key (damaged key)');
  return { public: { key, comment }, keyObject };
}

const KEY_TYPE_RE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9-]+@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$/;

/**
 * Public keys from authorized_keys-style lines ("ssh-ed25519 AAAA... comment", options allowed in
 * front) or allowed_signers lines ("principals [options] ssh-ed25519 AAAA..."). Comments and blank
 * lines are skipped; keys of other types are reported back so the caller can say so.
 */
export function parsePublicKeys(text: string, where: string): { keys: Ed25519PublicKey[]; otherTypes: string[] } {
  const keys: Ed25519PublicKey[] = [];
  const otherTypes: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    // Quoted option values may contain spaces; they never contain a key type token on their own.
    const tokens = line.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
    const at = tokens.findIndex((t) => KEY_TYPE_RE.test(t));
    if (at < 0 || at + 1 >= tokens.length) continue;
    const type = tokens[at]!;
    const blob = Buffer.from(tokens[at + 1]!, 'base64');
    let parsed;
    try {
      parsed = parsePublicKeyBlob(blob, 'SSH public key', where);
    } catch (err) {
      if (err instanceof FormatError) continue;
      throw err;
    }
    if (parsed.type !== type || !parsed.key) {
      otherTypes.push(type);
      continue;
    }
    const entry: Ed25519PublicKey = { key: parsed.key };
    const rest = tokens.slice(at + 2).join(' ');
    if (rest) entry.comment = rest;
    // allowed_signers: the first token is the principal list unless the line starts with options or the key.
    if (at > 0 && !tokens[0]!.includes('=')) entry.principals = tokens[0]!.split(',');
    keys.push(entry);
  }
  if (keys.length === 0) {
    throw new VmpmError(
      otherTypes.length
        ? `${where} holds only ${[...new Set(otherTypes)].join(', ')} keys; vmpm verifies ssh-ed25519 signatures only`
        : `${where} holds no SSH public key (expected a line like "ssh-ed25519 AAAA... comment" or an allowed_signers line)`,
    );
  }
  return { keys, otherTypes };
}
