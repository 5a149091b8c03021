/**
 * A tiny structural validator for JSON that vmpm did not produce itself: the sections of a bundle
 * (see bundle/validate) and QEMU's QMP replies (qmp/reply-shapes.ts). A bundle's digests are not secret:
 * anyone can rewrite a section and recompute them, so `verify` passing says nothing about the shape
 * of what a section holds. Every reader therefore checks a section against its schema before using
 * it, and a mismatch is one line naming the field ("field cpus[0].registers.rip must be a "0x..."
 * hex string"), never a TypeError deep inside a command.
 *
 * Unknown extra fields are accepted everywhere (forward compatibility: newer writers may add fields).
 */
import { isRecord } from './guards';

/** Thrown by a Shape; `path` is the JSON path of the offending field, `expected` what it must be. */
export class ShapeError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
  ) {
    super(`field ${path || '(top level)'} must be ${expected}`);
    this.name = 'ShapeError';
  }
}

/** Checks `value` found at `path`; throws ShapeError when it does not fit. */
export type Shape = (value: unknown, path: string) => void;

const HEX = /^0x[0-9a-fA-F]{1,64}$/;

function child(path: string, key: string): string {
  return /^[A-Za-z_$][\w$-]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;
}

export const str: Shape = (v, p) => {
  if (typeof v !== 'string') throw new ShapeError(p, 'a string');
};

export const num: Shape = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ShapeError(p, 'a number');
};

/** A non-negative integer no larger than 2^53 - 1. */
export const uint: Shape = (v, p) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ShapeError(p, 'a non-negative integer');
};

/** An integer as the QMP client decodes it: a number, or a bigint beyond 2^53. */
export const int: Shape = (v, p) => {
  if (typeof v === 'bigint') return;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ShapeError(p, 'an integer');
};

export const bool: Shape = (v, p) => {
  if (typeof v !== 'boolean') throw new ShapeError(p, 'true or false');
};

/** A 64-bit value as vmpm writes it: "0x" and 1..64 hex digits (x86 st/xmm registers are wider than 64 bits). */
export const hex: Shape = (v, p) => {
  if (typeof v !== 'string' || !HEX.test(v)) throw new ShapeError(p, 'a "0x..." hex string');
};

/** Anything at all (verbatim QMP data kept for the record). */
export const any: Shape = () => undefined;

export function nullable(shape: Shape): Shape {
  return (v, p) => {
    if (v !== null) shape(v, p);
  };
}

export function oneOf(...values: string[]): Shape {
  return (v, p) => {
    if (typeof v !== 'string' || !values.includes(v)) throw new ShapeError(p, `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`);
  };
}

export function array(item: Shape): Shape {
  return (v, p) => {
    if (!Array.isArray(v)) throw new ShapeError(p, 'an array');
    for (let i = 0; i < v.length; i++) item(v[i], `${p}[${i}]`);
  };
}

/** An object whose every value fits `value` (a map such as registers or timings). */
export function record(value: Shape): Shape {
  return (v, p) => {
    if (!isRecord(v)) throw new ShapeError(p, 'an object');
    for (const [k, x] of Object.entries(v)) value(x, child(p, k));
  };
}

/** An object with these fields; a key ending in "?" is optional (absent or undefined). */
export function object(fields: Record<string, Shape>): Shape {
  const entries = Object.entries(fields).map(([k, s]) => ({ key: k.replace(/\?$/, ''), optional: k.endsWith('?'), shape: s }));
  return (v, p) => {
    if (!isRecord(v)) throw new ShapeError(p, 'an object');
    for (const { key, optional, shape } of entries) {
      const x = Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined;
      if (x === undefined) {
        if (optional) continue;
        throw new ShapeError(child(p, key), `present (${describeShapeName(shape)})`);
      }
      shape(x, child(p, key));
    }
  };
}

/** Name of a primitive shape for "must be present" messages. */
function describeShapeName(shape: Shape): string {
  try {
    shape(Symbol('probe'), '');
  } catch (err) {
    if (err instanceof ShapeError) return err.expected;
  }
  return 'a value';
}
