/**
 * The age payload (C2SP age.md, "Payload"): a 16-byte nonce, then the plaintext in 64 KiB chunks,
 * each sealed with ChaCha20-Poly1305 under HKDF(file key, nonce, "payload") and a 12-byte nonce of
 * an 11-byte big-endian chunk counter plus a final-chunk flag byte. Both directions stream: memory
 * is one chunk plus the output batch, whatever the file size.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { VmpmError } from '../../util/errors';

export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const SEALED_CHUNK = CHUNK_SIZE + TAG_SIZE;
export const PAYLOAD_NONCE_SIZE = 16;
/** Sealed chunks are handed on in batches of about this size (fewer, larger writes). */
const OUTPUT_BATCH = 1 << 20;

function payloadKey(fileKey: Buffer, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, Buffer.from('payload'), 32));
}

function chunkNonce(counter: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  // 2^53 chunks of 64 KiB is far beyond any file; the top bytes of the 11-byte counter stay zero.
  n.writeUIntBE(Math.floor(counter / 2 ** 32), 3, 4);
  n.writeUInt32BE(counter >>> 0, 7);
  n[11] = final ? 1 : 0;
  return n;
}

function seal(key: Buffer, counter: number, final: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, chunkNonce(counter, final), { authTagLength: TAG_SIZE });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: Buffer, counter: number, final: boolean, sealed: Buffer): Buffer | undefined {
  const d = createDecipheriv('chacha20-poly1305', key, chunkNonce(counter, final), { authTagLength: TAG_SIZE });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_SIZE)), d.final()]);
  } catch {
    return undefined;
  }
}

/** Encrypts `source` as an age payload (nonce first). */
export async function* encryptPayload(fileKey: Buffer, source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const nonce = randomBytes(PAYLOAD_NONCE_SIZE);
  const key = payloadKey(fileKey, nonce);
  const out: Buffer[] = [nonce];
  let outBytes = nonce.length;
  const pending = Buffer.allocUnsafe(CHUNK_SIZE);
  let fill = 0;
  let counter = 0;
  for await (const chunk of source) {
    let off = 0;
    while (off < chunk.length) {
      // A full chunk is sealed only once more data arrives: the last chunk must carry the final flag.
      if (fill === CHUNK_SIZE) {
        const sealed = seal(key, counter++, false, pending);
        out.push(sealed);
        outBytes += sealed.length;
        fill = 0;
      }
      const n = Math.min(CHUNK_SIZE - fill, chunk.length - off);
      chunk.copy(pending, fill, off, off + n);
      fill += n;
      off += n;
    }
    if (outBytes >= OUTPUT_BATCH) {
      yield Buffer.concat(out);
      out.length = 0;
      outBytes = 0;
    }
  }
  out.push(seal(key, counter, true, pending.subarray(0, fill)));
  yield Buffer.concat(out);
}

/**
 * Decrypts an age payload (starting at its nonce). Every chunk is authenticated before its
 * plaintext is yielded; the stream must end with a valid final chunk, or this throws: a consumer
 * that only commits its output after the last yield never keeps a truncated or forged plaintext.
 * `what` names the file in messages.
 */
export async function* decryptPayload(fileKey: Buffer, source: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  let buf: Buffer = Buffer.alloc(0);
  let key: Buffer | undefined;
  let counter = 0;
  const out: Buffer[] = [];
  let outBytes = 0;
  const damaged = (): VmpmError =>
    new VmpmError(`${what} is truncated, damaged or was modified: payload chunk ${counter} (plaintext offset ${counter * CHUNK_SIZE}) fails authentication`);
  for await (const chunk of source) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!key) {
      if (buf.length < PAYLOAD_NONCE_SIZE) continue;
      key = payloadKey(fileKey, buf.subarray(0, PAYLOAD_NONCE_SIZE));
      buf = buf.subarray(PAYLOAD_NONCE_SIZE);
    }
    let off = 0;
    // A chunk is known not to be the last only when more bytes follow it.
    while (buf.length - off > SEALED_CHUNK) {
      const sealed = buf.subarray(off, off + SEALED_CHUNK);
      const plain = open(key, counter, false, sealed);
      if (!plain) {
        if (open(key, counter, true, sealed)) throw new VmpmError(`${what} has data after its final chunk (not a well-formed age file)`);
        throw damaged();
      }
      out.push(plain);
      outBytes += plain.length;
      counter++;
      off += SEALED_CHUNK;
    }
    buf = off === 0 ? buf : Buffer.from(buf.subarray(off));
    if (outBytes >= OUTPUT_BATCH) {
      yield Buffer.concat(out);
      out.length = 0;
      outBytes = 0;
    }
  }
  if (!key || buf.length < TAG_SIZE) throw new VmpmError(`${what} is truncated: the age payload ends without its final chunk`);
  if (buf.length === TAG_SIZE && counter > 0) throw new VmpmError(`${what} is not a well-formed age file: an empty final chunk after data`);
  const last = open(key, counter, true, buf);
  if (!last) {
    if (buf.length === SEALED_CHUNK && open(key, counter, false, buf)) {
      throw new VmpmError(`${what} is truncated: the age payload ends without its final chunk`);
    }
    throw damaged();
  }
  out.push(last);
  yield Buffer.concat(out);
}
