/**
 * The vmdesc: the JSON QEMU appends after the stream's EOF marker (QEMU_VM_VMDESCRIPTION, be32
 * length, JSON), describing every device section's fields by name, type and size. It is what
 * scripts/analyze-migration.py uses to walk device state; vmpm uses it the same way. Only the shape
 * below is trusted; anything else is refused.
 */
import { SECTION_TYPE } from './constants';
import { MigrationFormatError } from './errors';

export interface VmdescField {
  name: string;
  type: string;
  size: number;
  /** Present on arrays QEMU describes once for `array_len` elements. */
  arrayLen?: number;
  struct?: VmdescStruct;
}

export interface VmdescStruct {
  vmsdName: string;
  version: number;
  fields: VmdescField[];
  subsections: VmdescStruct[];
}

export interface VmdescDevice extends VmdescStruct {
  name: string;
  instanceId: number;
}

export interface Vmdesc {
  pageSize: number;
  devices: VmdescDevice[];
}

/** Largest vmdesc accepted (QEMU's are ~100-300 KB). */
export const MAX_VMDESC_BYTES = 16 * 1024 * 1024;
const MAX_DEPTH = 16;
const MAX_ARRAY = 1 << 20;
const MAX_FIELD_SIZE = 64 * 1024 * 1024;

/**
 * Finds the vmdesc at the end of a stream tail: EOF (0x00), 0x06, be32 length, then exactly `length`
 * bytes of JSON to the end. JSON text never contains byte 0x06, so the last position that fits is it.
 * Returns the offset of the EOF byte and the JSON, or undefined when the tail does not end that way.
 */
export function locateVmdesc(tail: Buffer): { eofOffset: number; json: Buffer } | undefined {
  const lowest = Math.max(1, tail.length - 5 - MAX_VMDESC_BYTES);
  for (let p = tail.length - 5; p >= lowest; p--) {
    if (tail[p] !== SECTION_TYPE.vmdescription) continue;
    if (tail.readUInt32BE(p + 1) !== tail.length - p - 5) continue;
    if (tail[p - 1] !== SECTION_TYPE.eof) continue;
    return { eofOffset: p - 1, json: tail.subarray(p + 5) };
  }
  return undefined;
}

export function parseVmdesc(json: Buffer): Vmdesc {
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new MigrationFormatError(`vmdesc is not JSON: ${(err as Error).message}`);
  }
  const top = asObject(value, 'vmdesc');
  const pageSize = asInt(top['page_size'], 'vmdesc page_size');
  const devicesRaw = top['devices'];
  if (!Array.isArray(devicesRaw)) throw new MigrationFormatError('vmdesc has no devices list');
  const devices = devicesRaw.map((d, i) => {
    const o = asObject(d, `vmdesc device ${i}`);
    const name = asString(o['name'], `vmdesc device ${i} name`);
    const s = parseStruct(o, `device ${name}`, 0);
    return { ...s, name, instanceId: asInt(o['instance_id'], `device ${name} instance_id`) };
  });
  return { pageSize, devices };
}

function parseStruct(o: Record<string, unknown>, where: string, depth: number): VmdescStruct {
  if (depth > MAX_DEPTH) throw new MigrationFormatError(`vmdesc nests deeper than ${MAX_DEPTH} at ${where}`);
  const fieldsRaw = o['fields'];
  if (!Array.isArray(fieldsRaw)) throw new MigrationFormatError(`vmdesc ${where} has no fields`);
  const subsRaw = o['subsections'] ?? [];
  if (!Array.isArray(subsRaw)) throw new MigrationFormatError(`vmdesc ${where} subsections is not a list`);
  return {
    vmsdName: typeof o['vmsd_name'] === 'string' ? o['vmsd_name'] : '',
    version: typeof o['version'] === 'number' ? o['version'] : 0,
    fields: fieldsRaw.map((f, i) => parseField(asObject(f, `${where} field ${i}`), `${where} field ${i}`, depth)),
    subsections: subsRaw.map((s, i) => parseStruct(asObject(s, `${where} subsection ${i}`), `${where} subsection ${i}`, depth + 1)),
  };
}

function parseField(o: Record<string, unknown>, where: string, depth: number): VmdescField {
  const field: VmdescField = {
    name: asString(o['name'], `${where} name`),
    type: asString(o['type'], `${where} type`),
    size: asInt(o['size'], `${where} size`),
  };
  if (field.size > MAX_FIELD_SIZE) throw new MigrationFormatError(`vmdesc ${where} is ${field.size} bytes (limit ${MAX_FIELD_SIZE})`);
  if (o['array_len'] !== undefined) {
    const n = asInt(o['array_len'], `${where} array_len`);
    if (n > MAX_ARRAY) throw new MigrationFormatError(`vmdesc ${where} has ${n} elements (limit ${MAX_ARRAY})`);
    field.arrayLen = n;
  }
  if (field.type === 'struct') field.struct = parseStruct(asObject(o['struct'], `${where} struct`), `${where} (${field.name})`, depth + 1);
  return field;
}

function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MigrationFormatError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function asString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new MigrationFormatError(`${what} is not a string`);
  return v;
}

function asInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new MigrationFormatError(`${what} is not a non-negative integer`);
  return v;
}
