// Chain of custody for bundles: seal/unseal (age), sign/verify (SSHSIG), slim and redact.
export { sealFile, unsealFile, type SealResult, type UnsealResult } from './seal';
