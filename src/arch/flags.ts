/** Decoding of flag registers into named bits, shared by the architectures. */
import type { Hex } from '../util/hex';
import { toHex } from '../util/hex';

/** A bit position and its architectural name. */
export type BitName = readonly [bit: number, name: string];

export interface FlagDecoding {
  register: string;
  value: Hex;
  /** Names of the set bits (and field values such as "IOPL=3"); unnamed set bits as "bit<n>". */
  set: string[];
  /** One human line, e.g. "PE ET NE WP PG" or "(none)". */
  text: string;
}

/**
 * Names the set bits of `value`. Set bits that have no name and are not in `ignoredMask` are listed
 * as "bit<n>", so a reserved or newer bit is visible instead of silently dropped.
 */
export function decodeBits(register: string, value: bigint, bits: readonly BitName[], ignoredMask = 0n): FlagDecoding {
  const set: string[] = [];
  let named = 0n;
  for (const [bit, name] of bits) {
    const mask = 1n << BigInt(bit);
    named |= mask;
    if ((value & mask) !== 0n) set.push(name);
  }
  let unknown = value & ~named & ~ignoredMask;
  for (let bit = 0; unknown !== 0n; bit++, unknown >>= 1n) {
    if ((unknown & 1n) !== 0n) set.push(`bit${bit}`);
  }
  return { register, value: toHex(value), set, text: set.length > 0 ? set.join(' ') : '(none)' };
}
