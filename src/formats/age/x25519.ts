/**
 * age's X25519 recipient type (C2SP age.md, "The X25519 recipient type"): Bech32 keys
 * (`age1...` recipients, `AGE-SECRET-KEY-1...` identities) and the stanza that wraps the 16-byte
 * file key for one recipient. Node's crypto does X25519, HKDF-SHA-256 and ChaCha20-Poly1305; raw
 * 32-byte keys enter it through their fixed DER prefixes (RFC 8410).
 */
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { VmpmError } from '../../util/errors';
import { b64DecodeCanonical, b64Encode } from './base64';
import { bech32Decode, bech32Encode } from './bech32';
import type { Stanza } from './header';

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_INFO = Buffer.from('age-encryption.org/v1/X25519');
const RECIPIENT_HRP = 'age';
const IDENTITY_HRP = 'age-secret-key-';

export interface X25519Identity {
  secret: Buffer;
  /** The matching recipient (public key), 32 bytes. */
  recipient: Buffer;
}

function privateKeyObject(secret: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(pub: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, pub]), format: 'der', type: 'spki' });
}

function publicOf(secret: Buffer): Buffer {
  const der = createPublicKey(privateKeyObject(secret)).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

/** X25519(secret, pub); refuses the all-zero result of a low-order point, as age requires. */
function x25519(secret: Buffer, pub: Buffer): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: privateKeyObject(secret), publicKey: publicKeyObject(pub) });
  } catch {
    throw new VmpmError('X25519 key agreement failed (a stanza carries an invalid ephemeral share)');
  }
  if (shared.every((b) => b === 0)) throw new VmpmError('X25519 key agreement gave the all-zero secret (a malicious stanza)');
  return shared;
}

function wrapKey(shared: Buffer, ephemeralShare: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeralShare, recipient]), X25519_INFO, 32));
}

export function parseRecipient(text: string): Buffer {
  const d = bech32Decode(text.trim());
  if (!d || d.hrp !== RECIPIENT_HRP || d.data.length !== 32) {
    throw new VmpmError(`${JSON.stringify(text)} is not an age X25519 recipient (expected age1... as printed by age-keygen)`);
  }
  return d.data;
}

export function formatRecipient(pub: Buffer): string {
  return bech32Encode(RECIPIENT_HRP, pub);
}

export function formatIdentity(secret: Buffer): string {
  return bech32Encode(IDENTITY_HRP, secret).toUpperCase();
}

/** A new random identity (age-keygen's job; used by tests and benchmarks). */
export function generateIdentity(): X25519Identity {
  const secret = randomBytes(32);
  return { secret, recipient: publicOf(secret) };
}

/**
 * Parses an identity file as age-keygen writes it: `#` comments, blank lines, and one
 * `AGE-SECRET-KEY-1...` per line. `where` names the file in messages.
 */
export function parseIdentities(text: string, where: string): X25519Identity[] {
  const out: X25519Identity[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const d = bech32Decode(line);
    if (!d || d.hrp !== IDENTITY_HRP || d.data.length !== 32) {
      const hint = line.startsWith('-----BEGIN') ? ' (SSH keys as age identities are not supported; use an age-keygen identity)' : '';
      throw new VmpmError(`${where} line ${i + 1} is not an age identity (expected AGE-SECRET-KEY-1...)${hint}`);
    }
    out.push({ secret: d.data, recipient: publicOf(d.data) });
  }
  if (out.length === 0) throw new VmpmError(`${where} holds no age identity (expected a line AGE-SECRET-KEY-1... as written by age-keygen)`);
  return out;
}

export function wrapFileKey(fileKey: Buffer, recipient: Buffer): Stanza {
  const ephemeral = randomBytes(32);
  const share = publicOf(ephemeral);
  const key = wrapKey(x25519(ephemeral, recipient), share, recipient);
  const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  const body = Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
  return { args: ['X25519', b64Encode(share)], body };
}

/**
 * Unwraps the file key from an X25519 stanza for `identity`: undefined when the stanza is for
 * someone else (the AEAD does not open), an error when the stanza is malformed.
 */
export function unwrapFileKey(stanza: Stanza, identity: X25519Identity): Buffer | undefined {
  if (stanza.args[0] !== 'X25519') return undefined;
  const share = stanza.args.length === 2 ? b64DecodeCanonical(stanza.args[1]!) : undefined;
  if (!share || share.length !== 32) throw new VmpmError('malformed X25519 stanza in the age header (expected one 32-byte share)');
  if (stanza.body.length !== 32) throw new VmpmError('malformed X25519 stanza in the age header (body is not 32 bytes)');
  const key = wrapKey(x25519(identity.secret, share), share, identity.recipient);
  const d = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  d.setAuthTag(stanza.body.subarray(16));
  try {
    return Buffer.concat([d.update(stanza.body.subarray(0, 16)), d.final()]);
  } catch {
    return undefined;
  }
}
