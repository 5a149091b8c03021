/**
 * One fixed-size little-endian record of the bundle format, described once (field, offset, kind) and
 * used by both sides: `write` for the writer, `read` for the reader. Reads go through
 * formats/byte-reader, so a record that does not lie inside its buffer fails as a FormatError naming
 * the field and offset instead of reading past the end.
 */
import { ByteReader } from '../formats/byte-reader';

/** 32-byte SHA-256 digests (format.ts DIGEST_SIZE; repeated here so format.ts can use this module). */
const DIGEST = 32;

type Kind = 'u16' | 'u32' | 'u64' | 'digest';
type ValueOf<K extends Kind> = K extends 'u16' | 'u32' ? number : K extends 'u64' ? bigint : Buffer;
interface FieldSpec {
  readonly at: number;
  readonly kind: Kind;
}
export type Fields = Readonly<Record<string, FieldSpec>>;
/** The values of one entry, as stored: u16/u32 as number, u64 as bigint, digests as 32-byte views. */
export type EntryValues<F extends Fields> = { [K in keyof F]: ValueOf<F[K]['kind']> };

const WIDTH: Record<Kind, number> = { u16: 2, u32: 4, u64: 8, digest: DIGEST };

export class EntryCodec<F extends Fields> {
  private readonly list: Array<[keyof F & string, FieldSpec]>;
  constructor(
    readonly size: number,
    readonly fields: F,
  ) {
    this.list = Object.entries(fields) as Array<[keyof F & string, FieldSpec]>;
    const end = Math.max(...this.list.map(([, f]) => f.at + WIDTH[f.kind]));
    if (end > size) throw new Error(`entry fields end at ${end}, past the ${size}-byte entry`);
  }

  /** The entry at `o` (relative to the reader's window). */
  read(r: ByteReader, o: number): EntryValues<F> {
    const out: Record<string, number | bigint | Buffer> = {};
    for (const [name, f] of this.list) {
      const at = o + f.at;
      out[name] = f.kind === 'u16' ? r.u16(at, name) : f.kind === 'u32' ? r.u32(at, name) : f.kind === 'u64' ? r.u64(at, name) : r.bytes(at, DIGEST, name);
    }
    return out as EntryValues<F>;
  }

  write(b: Buffer, o: number, v: EntryValues<F>): void {
    for (const [name, f] of this.list) {
      const value = v[name];
      if (f.kind === 'u16') b.writeUInt16LE(value as number, o + f.at);
      else if (f.kind === 'u32') b.writeUInt32LE(value as number, o + f.at);
      else if (f.kind === 'u64') b.writeBigUInt64LE(value as bigint, o + f.at);
      else (value as Buffer).copy(b, o + f.at, 0, DIGEST);
    }
  }
}

/** A little-endian reader over a bundle structure buffer, reporting offsets within the file (`base`). */
export function bundleBytes(b: Buffer, what: string, file?: string, base = 0): ByteReader {
  return new ByteReader(b, { format: `vmpm bundle ${what}`, littleEndian: true, file, base });
}
