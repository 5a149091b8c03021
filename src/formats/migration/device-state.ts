/**
 * Decodes the device sections of a migration stream tail with the vmdesc, the way
 * scripts/analyze-migration.py walks them: each field is `size` bytes (big-endian integers, except
 * "int32 le"), arrays repeat a field `array_len` times, structs recurse, and a struct's subsections
 * (the ones QEMU sent, which are the ones the vmdesc lists) follow its fields, each introduced by
 * 0x05, its name and version. Values come out as a flat map of dotted paths, e.g. "env.regs[3]",
 * "env.segs[1].base", "cpu/msr_smi_count.env.msr_smi_count".
 */
import { ByteReader } from '../byte-reader';
import { PAGE_SIZE, SECTION_TYPE } from './constants';
import { MigrationFormatError } from './errors';
import { locateVmdesc, parseVmdesc, type Vmdesc, type VmdescField, type VmdescStruct } from './vmdesc';

/** Integers up to 8 bytes as bigint (unsigned, or two's complement for int types), anything else raw. */
export type FieldValue = bigint | Buffer;

export interface DeviceSection {
  name: string;
  instanceId: number;
  version: number;
  fields: Map<string, FieldValue>;
}

export interface DeviceState {
  vmdesc: Vmdesc;
  sections: DeviceSection[];
}

/** Most fields decoded in all (QEMU 7.2 pc: a few thousand). */
const MAX_FIELDS = 1_000_000;

export function decodeDeviceState(tail: Buffer): DeviceState {
  const found = locateVmdesc(tail);
  if (!found) throw new MigrationFormatError('migration stream ends without a vmdesc (EOF, 0x06, length, JSON)');
  const vmdesc = parseVmdesc(found.json);
  if (vmdesc.pageSize !== PAGE_SIZE) throw new MigrationFormatError(`vmdesc says the target page size is ${vmdesc.pageSize}, expected ${PAGE_SIZE}`);
  const r = new Reader(tail.subarray(0, found.eofOffset));
  const sections: DeviceSection[] = [];
  let lastId: number | undefined;
  while (r.remaining() > 0) {
    const type = r.u8();
    if (type === SECTION_TYPE.footer) {
      const id = r.u32();
      if (id !== lastId) r.fail(`section footer names section ${id}, expected ${lastId ?? 'none'}`);
      continue;
    }
    if (type !== SECTION_TYPE.full && type !== SECTION_TYPE.start) r.fail(`section type 0x${type.toString(16)} in device state`);
    lastId = r.u32();
    const name = r.str(r.u8());
    const instanceId = r.u32();
    const version = r.u32();
    const device =
      vmdesc.devices.find((d) => d.name === name && d.instanceId === instanceId) ??
      r.fail(`device section ${JSON.stringify(name)} instance ${instanceId} is not in the vmdesc`);
    const fields = new Map<string, FieldValue>();
    readStruct(r, device, '', fields);
    sections.push({ name, instanceId, version, fields });
  }
  return { vmdesc, sections };
}

function readStruct(r: Reader, s: VmdescStruct, prefix: string, out: Map<string, FieldValue>): void {
  for (const f of s.fields) {
    if (f.arrayLen === undefined) readField(r, f, `${prefix}${f.name}`, out);
    else for (let i = 0; i < f.arrayLen; i++) readField(r, f, `${prefix}${f.name}[${i}]`, out);
  }
  for (const sub of s.subsections) {
    if (r.u8() !== SECTION_TYPE.subsection) r.fail(`subsection ${JSON.stringify(sub.vmsdName)} not found where the vmdesc puts it`);
    const name = r.str(r.u8());
    if (name !== sub.vmsdName) r.fail(`subsection ${JSON.stringify(name)} found where the vmdesc expects ${JSON.stringify(sub.vmsdName)}`);
    r.u32(); // version
    readStruct(r, sub, `${prefix}${name}.`, out);
  }
}

function readField(r: Reader, f: VmdescField, path: string, out: Map<string, FieldValue>): void {
  if (out.size >= MAX_FIELDS) r.fail(`more than ${MAX_FIELDS} device fields`);
  if (f.type === 'struct' && f.struct) {
    readStruct(r, f.struct, `${path}.`, out);
    return;
  }
  const bytes = r.bytes(f.size);
  out.set(path, isInteger(f.type) && f.size >= 1 && f.size <= 8 ? toInt(bytes, f.type) : Buffer.from(bytes));
}

function isInteger(type: string): boolean {
  return /^u?int(8|16|32|64)( equal| le)?$/.test(type) || type === 'bool';
}

function toInt(b: Buffer, type: string): bigint {
  const le = type.endsWith(' le');
  let v = 0n;
  for (let i = 0; i < b.length; i++) v = (v << 8n) | BigInt(b[le ? b.length - 1 - i : i]!);
  if (type.startsWith('int') && b.length > 0) v = BigInt.asIntN(b.length * 8, v);
  return v;
}

/** The device-state walk on the shared bounds-checked reader (big-endian, a cursor). */
class Reader {
  private readonly r: ByteReader;
  constructor(buf: Buffer) {
    this.r = new ByteReader(buf, { format: 'migration device state', littleEndian: false });
  }
  remaining(): number {
    return this.r.remaining;
  }
  fail(what: string): never {
    throw new MigrationFormatError(`device state offset ${this.r.pos}: ${what}`);
  }
  bytes(n: number): Buffer {
    return this.r.nextBytes(n, 'device field');
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  u32(): number {
    return this.r.nextU32('section header');
  }
  str(n: number): string {
    return this.bytes(n).toString('latin1');
  }
}
