/**
 * OpenSSH's SSHSIG signature format (PROTOCOL.sshsig): the armored detached signature that
 * `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks. vmpm signs with Ed25519 and
 * sha512 (what ssh-keygen uses by default) and verifies Ed25519 signatures over sha256 or sha512.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { ED25519, parsePublicKeyBlob, publicKeyBlob, publicKeyObject } from './keys';
import { readString, readText, sshReader, sshString, sshUint32 } from './wire';
import type { ByteReader } from '../byte-reader';

const MAGIC = Buffer.from('SSHSIG', 'latin1');
const SIG_VERSION = 1;
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';
const FORMAT = 'SSH signature';
/** ssh-keygen wraps the armored base64 at 70 columns. */
const ARMOR_COLUMNS = 70;
export type SshsigHash = 'sha256' | 'sha512';

export interface Sshsig {
  /** Type of the signing key ("ssh-ed25519"; others are parsed only to be named in refusals). */
  keyType: string;
  /** The signer's raw Ed25519 public key, when keyType is ssh-ed25519. */
  publicKey?: Buffer;
  namespace: string;
  hashAlgorithm: string;
  /** Signature algorithm named inside the signature blob, and its raw bytes. */
  signatureType: string;
  signature: Buffer;
}

/** The bytes the signing key signs: MAGIC, namespace, reserved, hash algorithm, H(message). */
function signedData(namespace: string, hash: SshsigHash, digest: Buffer): Buffer {
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(hash), sshString(digest)]);
}

/** Signs a message digest (computed by the caller, streaming) and returns the armored signature text. */
export function signDigest(key: { public: { key: Buffer }; keyObject: KeyObject }, namespace: string, hash: SshsigHash, digest: Buffer): string {
  const sig = sign(null, signedData(namespace, hash, digest), key.keyObject);
  const blob = Buffer.concat([
    MAGIC,
    sshUint32(SIG_VERSION),
    sshString(publicKeyBlob(key.public.key)),
    sshString(namespace),
    sshString(''),
    sshString(hash),
    sshString(Buffer.concat([sshString(ED25519), sshString(sig)])),
  ]);
  const b64 = blob.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += ARMOR_COLUMNS) lines.push(b64.slice(i, i + ARMOR_COLUMNS));
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

/** Parses armored SSHSIG text. `file` names it in messages. */
export function parseSignature(text: string, file?: string): Sshsig {
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const r0 = sshReader(Buffer.alloc(0), FORMAT, file);
  if (start < 0 || end < start) throw r0.error(`no ${BEGIN} ... ${END} block`);
  const b64 = text.slice(start + BEGIN.length, end).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw r0.error('the armored body is not base64');
  const r = sshReader(Buffer.from(b64, 'base64'), FORMAT, file);
  if (!r.has(0, 6) || !r.bytes(0, 6).equals(MAGIC)) throw r.error('no SSHSIG magic');
  r.pos = 6;
  const version = r.nextU32('version');
  if (version !== SIG_VERSION) throw r.error(`signature version ${version} is not supported (vmpm reads version ${SIG_VERSION})`);
  const pub = parsePublicKeyBlob(readString(r, 'public key'), FORMAT, file);
  const namespace = readText(r, 'namespace');
  readString(r, 'reserved');
  const hashAlgorithm = readText(r, 'hash algorithm');
  const sigBlob = sshReader(readString(r, 'signature'), FORMAT, file);
  if (r.remaining !== 0) throw r.error(`${r.remaining} unexpected bytes after the signature`);
  const { signatureType, signature } = readSignatureBlob(sigBlob);
  const out: Sshsig = { keyType: pub.type, namespace, hashAlgorithm, signatureType, signature };
  if (pub.key) out.publicKey = pub.key;
  return out;
}

function readSignatureBlob(r: ByteReader): { signatureType: string; signature: Buffer } {
  const signatureType = readText(r, 'signature type');
  const signature = readString(r, 'signature bytes');
  return { signatureType, signature };
}

/** True when `sig` is a valid Ed25519 signature of `digest` (already checked: namespace, hash name). */
export function signatureHolds(sig: Sshsig, digest: Buffer): boolean {
  if (sig.keyType !== ED25519 || !sig.publicKey || sig.signatureType !== ED25519 || sig.signature.length !== 64) return false;
  if (sig.hashAlgorithm !== 'sha256' && sig.hashAlgorithm !== 'sha512') return false;
  return verify(null, signedData(sig.namespace, sig.hashAlgorithm, digest), publicKeyObject(sig.publicKey), sig.signature);
}
