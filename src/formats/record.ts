/**
 * Fixed-size records of binary formats, described once (field, offset, kind) and used by both sides:
 * `write` for writers, `read` for parsers (the bundle's header, footer and trailer entries; kdump's
 * headers and page descriptors). Reads go through byte-reader, so a record that does not lie inside
 * its buffer fails as a FormatError naming the field and offset instead of reading past the end.
 * Little-endian (both formats that use it are).
 */
import { ByteReader } from './byte-reader';

type Kind = 'u16' | 'u32' | 'u64' | 'i64' | 'digest' | 'latin1';
type ValueOf<K extends Kind> = K extends 'u16' | 'u32' ? number : K extends 'u64' | 'i64' ? bigint : K extends 'latin1' ? string : Buffer;
export interface FieldSpec {
  readonly at: number;
  readonly kind: Kind;
  /** Bytes of a 'latin1' field (NUL-padded; read up to the first NUL). */
  readonly size?: number;
  /** The format version that introduced the field (kdump's header_version); the caller applies it. */
  readonly since?: number;
}
export type Fields = Readonly<Record<string, FieldSpec>>;
/** The values of one record: u16/u32 as number, u64/i64 as bigint, digests as 32-byte views, latin1 as string. */
export type EntryValues<F extends Fields> = { [K in keyof F]: ValueOf<F[K]['kind']> };

/** SHA-256 digests: 32 bytes. */
const DIGEST = 32;
const WIDTH: Record<Exclude<Kind, 'latin1'>, number> = { u16: 2, u32: 4, u64: 8, i64: 8, digest: DIGEST };

function width(f: FieldSpec): number {
  return f.kind === 'latin1' ? f.size ?? 0 : WIDTH[f.kind];
}

export class EntryCodec<F extends Fields> {
  private readonly list: Array<[keyof F & string, FieldSpec]>;
  constructor(
    readonly size: number,
    readonly fields: F,
  ) {
    this.list = Object.entries(fields) as Array<[keyof F & string, FieldSpec]>;
    const end = Math.max(...this.list.map(([, f]) => f.at + width(f)));
    if (end > size) throw new Error(`record fields end at ${end}, past the ${size}-byte record`);
  }

  /** The record at `o` (relative to the reader's window). */
  read(r: ByteReader, o: number): EntryValues<F> {
    const out: Record<string, number | bigint | Buffer | string> = {};
    for (const [name, f] of this.list) out[name] = readField(r, o + f.at, f, name);
    return out as EntryValues<F>;
  }

  /** One field of the record at `o`. */
  field<K extends keyof F & string>(r: ByteReader, o: number, name: K): EntryValues<F>[K] {
    return readField(r, o + this.fields[name]!.at, this.fields[name]!, name) as EntryValues<F>[K];
  }

  write(b: Buffer, o: number, v: EntryValues<F>): void {
    for (const [name, f] of this.list) {
      const value = v[name];
      const at = o + f.at;
      if (f.kind === 'u16') b.writeUInt16LE(value as number, at);
      else if (f.kind === 'u32') b.writeUInt32LE(value as number, at);
      else if (f.kind === 'u64') b.writeBigUInt64LE(value as bigint, at);
      else if (f.kind === 'i64') b.writeBigUInt64LE(BigInt.asUintN(64, value as bigint), at);
      else if (f.kind === 'latin1') b.write((value as string).slice(0, width(f) - 1), at, 'latin1');
      else (value as Buffer).copy(b, at, 0, DIGEST);
    }
  }
}

function readField(r: ByteReader, at: number, f: FieldSpec, name: string): number | bigint | Buffer | string {
  switch (f.kind) {
    case 'u16':
      return r.u16(at, name);
    case 'u32':
      return r.u32(at, name);
    case 'u64':
      return r.u64(at, name);
    case 'i64':
      return BigInt.asIntN(64, r.u64(at, name));
    case 'latin1': {
      const raw = r.bytes(at, width(f), name);
      const nul = raw.indexOf(0);
      return raw.toString('latin1', 0, nul < 0 ? raw.length : nul);
    }
    default:
      return r.bytes(at, DIGEST, name);
  }
}
