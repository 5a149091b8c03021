/**
 * SSH wire encoding (RFC 4251 §5): big-endian uint32 and length-prefixed strings, read through the
 * shared bounds-checked ByteReader so no length in the input can reach past it.
 */
import { ByteReader } from '../byte-reader';

export function sshReader(buf: Buffer, format: string, file?: string): ByteReader {
  return new ByteReader(buf, { format, littleEndian: false, file });
}

export function readString(r: ByteReader, field: string): Buffer {
  const n = r.nextU32(`${field} length`);
  return r.nextBytes(n, field);
}

export function readText(r: ByteReader, field: string): string {
  return readString(r, field).toString('utf8');
}

export function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

export function sshUint32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
