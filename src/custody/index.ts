// Chain of custody for bundles: seal/unseal (age), sign/verify (SSHSIG), slim and redact.
export { sealFile, unsealFile, type SealResult, type UnsealResult } from './seal';
export { checkSignature, loadSigningKey, signatureBeside, signFile, SIGNATURE_NAMESPACE, type SignatureCheck, type SignResult } from './sign';
export { slimBundle, type SlimOptions, type SlimResult } from './slim';
export { redactBundle, compilePattern, PATTERN_MAX_MATCH, type RedactOptions, type RedactResult } from './redact';
export { MAX_VIRT_BYTES } from './virt';
