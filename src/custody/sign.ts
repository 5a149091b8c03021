/**
 * `vmpm sign` / `vmpm verify --signature`: an SSHSIG (OpenSSH) Ed25519 signature of a whole bundle
 * file, namespace "vmpm", sha512 of the file streamed in 1 MiB chunks. `ssh-keygen -Y verify -n vmpm`
 * checks the same signature; a bundle's hashes catch accidents, this catches a forger who recomputes
 * them.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { fsErrorText } from '../bundle/fs-errors';
import { fingerprint, parsePrivateKey, parsePublicKeys, parseSignature, signatureHolds, signDigest, type Ed25519PrivateKey, type Sshsig } from '../formats/sshsig';
import { VmpmError } from '../util/errors';
import { inputSize, readChunks, writeAtomically } from './files';

export const SIGNATURE_NAMESPACE = 'vmpm';
const MAX_KEY_FILE = 64 * 1024;

async function readSmallText(path: string, what: string): Promise<string> {
  try {
    const st = await fsp.stat(path);
    if (!st.isFile()) throw new VmpmError(`${what} ${path} is not a regular file`);
    if (st.size > MAX_KEY_FILE) throw new VmpmError(`${what} ${path} is ${st.size} bytes, too large to be one`);
    return await fsp.readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof VmpmError) throw err;
    throw new VmpmError(`cannot read ${what} ${path}: ${fsErrorText(err)}`, { cause: err });
  }
}

/** Loads an unencrypted OpenSSH Ed25519 private key (e.g. /etc/ssh/ssh_host_ed25519_key). */
export async function loadSigningKey(path: string): Promise<Ed25519PrivateKey> {
  return parsePrivateKey(await readSmallText(path, 'signing key'), path);
}

async function digestOf(file: string, algorithm: 'sha256' | 'sha512'): Promise<Buffer> {
  await inputSize(file);
  const h = createHash(algorithm);
  for await (const chunk of readChunks(file)) h.update(chunk);
  return h.digest();
}

export interface SignResult {
  file: string;
  signature: string;
  fingerprint: string;
  comment: string | null;
}

/** Signs `file`, writing the armored signature to `signaturePath` (default FILE.sig) atomically. */
export async function signFile(file: string, key: Ed25519PrivateKey, options: { signaturePath?: string; force?: boolean } = {}): Promise<SignResult> {
  const signature = options.signaturePath ?? `${file}.sig`;
  const text = signDigest(key, SIGNATURE_NAMESPACE, 'sha512', await digestOf(file, 'sha512'));
  await writeAtomically(signature, [Buffer.from(text, 'latin1')], options.force === true);
  return { file, signature, fingerprint: fingerprint(key.public.key), comment: key.public.comment || null };
}

export interface SignatureCheck {
  file: string;
  signature: string;
  /** Fingerprint of the key that made the signature (null when it is not an Ed25519 key). */
  signedBy: string | null;
  keyType: string;
  namespace: string;
  /** The signature verifies for the file with the key inside it. */
  holds: boolean;
  /** When a signer was given: whether the signing key is one of the signer's keys. */
  trusted: boolean | null;
  /** Principals (allowed_signers) or comment of the matching signer key. */
  signer: string | null;
  /** Why it does not hold / is not trusted, in words; null when all is well. */
  problem: string | null;
}

/**
 * Checks `signaturePath` against `file`. With `signerSpec` (a key line, or a file of
 * authorized_keys/allowed_signers lines) the signing key must also be one of those keys.
 */
export async function checkSignature(file: string, signaturePath: string, signerSpec?: string): Promise<SignatureCheck> {
  const sig = parseSignature(await readSmallText(signaturePath, 'signature'), signaturePath);
  const signers = signerSpec === undefined ? undefined : await loadSigners(signerSpec);
  const check: SignatureCheck = {
    file,
    signature: signaturePath,
    signedBy: sig.publicKey ? fingerprint(sig.publicKey) : null,
    keyType: sig.keyType,
    namespace: sig.namespace,
    holds: false,
    trusted: null,
    signer: null,
    problem: null,
  };
  check.problem = precheck(sig);
  if (check.problem) return check;
  check.holds = signatureHolds(sig, await digestOf(file, sig.hashAlgorithm as 'sha256' | 'sha512'));
  if (!check.holds) check.problem = `the signature does not match ${file}: the file was changed after it was signed, or the signature is for another file`;
  if (signers) {
    const match = signers.keys.find((k) => k.key.equals(sig.publicKey!));
    check.trusted = match !== undefined;
    if (match) check.signer = match.principals?.join(',') ?? match.comment ?? null;
    else {
      const given = signers.keys.map((k) => fingerprint(k.key)).join(', ');
      check.problem = `the signature is by another key (${check.signedBy}), not by the signer given (${given})${check.holds ? '' : `; ${check.problem}`}`;
    }
  }
  return check;
}

function precheck(sig: Sshsig): string | null {
  if (sig.keyType !== 'ssh-ed25519') return `the signature was made with an ${sig.keyType} key; vmpm verifies ssh-ed25519 signatures only (ssh-keygen -Y verify checks others)`;
  if (sig.namespace !== SIGNATURE_NAMESPACE) return `the signature's namespace is ${JSON.stringify(sig.namespace)}, not "${SIGNATURE_NAMESPACE}": it was not made for a vmpm bundle`;
  if (sig.hashAlgorithm !== 'sha256' && sig.hashAlgorithm !== 'sha512') return `the signature uses hash ${JSON.stringify(sig.hashAlgorithm)} (expected sha512 or sha256)`;
  return null;
}

/** A signer given on the command line: the key text itself, or a file holding key lines. */
async function loadSigners(spec: string): Promise<ReturnType<typeof parsePublicKeys>> {
  if (/(^|\s)(ssh-|ecdsa-|sk-)[a-z0-9@.-]+\s+AAAA/.test(spec)) return parsePublicKeys(spec, 'the --signer key');
  return parsePublicKeys(await readSmallText(spec, 'signer key file'), spec);
}

/** For `info`: the signature beside a bundle (FILE.sig), checked with the key inside it; null if none. */
export async function signatureBeside(file: string): Promise<SignatureCheck | null> {
  const path = `${file}.sig`;
  const exists = await fsp.stat(path).then((s) => s.isFile(), () => false);
  if (!exists) return null;
  try {
    return await checkSignature(file, path);
  } catch (err) {
    if (!(err instanceof VmpmError)) throw err;
    return { file, signature: path, signedBy: null, keyType: 'unknown', namespace: '', holds: false, trusted: null, signer: null, problem: err.message };
  }
}
