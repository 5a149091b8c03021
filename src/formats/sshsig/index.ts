// OpenSSH signatures (PROTOCOL.sshsig) with Ed25519 keys (PROTOCOL.key): what `ssh-keygen -Y` reads and writes.
export { parseSignature, signDigest, signatureHolds, type Sshsig, type SshsigHash } from './signature';
export { ED25519, fingerprint, parsePrivateKey, parsePublicKeys, type Ed25519PrivateKey, type Ed25519PublicKey } from './keys';
