/**
 * age v1 encryption (C2SP age.md) with X25519 recipients, on Node's own crypto. vmpm uses the
 * binary format only (no ASCII armor), X25519 recipients only (no scrypt, plugins or SSH keys).
 */
import { randomBytes } from 'node:crypto';
import { VmpmError } from '../../util/errors';
import { encodeHeader, headerEnd, headerMacHolds, MAX_HEADER_BYTES, parseHeader, VERSION_LINE } from './header';
import { decryptPayload, encryptPayload } from './stream';
import { unwrapFileKey, wrapFileKey, type X25519Identity } from './x25519';

export { formatIdentity, formatRecipient, generateIdentity, parseIdentities, parseRecipient, type X25519Identity } from './x25519';
export { CHUNK_SIZE } from './stream';

/** Encrypts `source` to every recipient (32-byte X25519 public keys): header, then payload. */
export async function* ageEncrypt(recipients: Buffer[], source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (recipients.length === 0) throw new VmpmError('age encryption needs at least one recipient');
  const fileKey = randomBytes(16);
  yield encodeHeader(
    recipients.map((r) => wrapFileKey(fileKey, r)),
    fileKey,
  );
  yield* encryptPayload(fileKey, source);
}

/** Splits the header off the front of `source`; the rest iterator starts right after it. */
async function readHeader(source: AsyncIterable<Buffer>, what: string): Promise<{ header: Buffer; rest: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    const end = headerEnd(buf);
    if (end >= 0) {
      const leftover = buf.subarray(end);
      const rest = (async function* () {
        if (leftover.length) yield leftover;
        for (;;) {
          const r = await it.next();
          if (r.done) return;
          yield r.value;
        }
      })();
      return { header: buf.subarray(0, end), rest };
    }
    const probe = buf.subarray(0, VERSION_LINE.length).toString('latin1');
    if (!VERSION_LINE.startsWith(probe)) {
      const armored = buf.subarray(0, 34).toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE-----');
      throw new VmpmError(armored ? `${what} is ASCII-armored (age -a); vmpm reads binary age files: run age -d on it` : `${what} is not an age-encrypted file`);
    }
    if (buf.length > MAX_HEADER_BYTES) throw new VmpmError(`${what}: the age header is over ${MAX_HEADER_BYTES} bytes (not a file vmpm sealed)`);
    const r = await it.next();
    if (r.done) throw new VmpmError(buf.length === 0 ? `${what} is empty` : `${what} is truncated inside its age header`);
    buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
  }
}

/**
 * Decrypts an age file with the first identity that opens one of its stanzas. The header MAC is
 * checked before any plaintext is produced; the payload is authenticated chunk by chunk and the
 * generator throws unless it ends with a valid final chunk.
 */
export async function* ageDecrypt(identities: X25519Identity[], source: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const { header, rest } = await readHeader(source, what);
  const parsed = parseHeader(header);
  const scrypt = parsed.stanzas.some((s) => s.args[0] === 'scrypt');
  if (scrypt) throw new VmpmError(`${what} is passphrase-encrypted (age -p); vmpm opens files sealed to X25519 recipients only`);
  let fileKey: Buffer | undefined;
  for (const stanza of parsed.stanzas) {
    for (const id of identities) {
      fileKey = unwrapFileKey(stanza, id);
      if (fileKey) break;
    }
    if (fileKey) break;
  }
  if (!fileKey) {
    const n = parsed.stanzas.filter((s) => s.args[0] === 'X25519').length;
    const others = parsed.stanzas.length - n;
    throw new VmpmError(
      `no identity given matches ${what}: it is sealed to ${n} X25519 recipient(s)${others ? ` and ${others} of other types` : ''}, none of them yours`,
    );
  }
  if (!headerMacHolds(parsed, fileKey)) throw new VmpmError(`${what}: the age header was modified (its MAC does not match)`);
  yield* decryptPayload(fileKey, rest, what);
}
