/**
 * age's base64: RFC 4648 standard alphabet, no `=` padding, and only canonical encodings (the
 * unused low bits of the last character are zero). Node's decoder is lenient, so canonicity is
 * checked by re-encoding.
 */
const B64_RE = /^[A-Za-z0-9+/]*$/;

export function b64Encode(data: Uint8Array): string {
  return Buffer.from(data).toString('base64').replace(/=+$/, '');
}

/** Returns undefined for padded, non-canonical or non-base64 text. */
export function b64DecodeCanonical(text: string): Buffer | undefined {
  if (!B64_RE.test(text) || text.length % 4 === 1) return undefined;
  const data = Buffer.from(text, 'base64');
  return b64Encode(data) === text ? data : undefined;
}
