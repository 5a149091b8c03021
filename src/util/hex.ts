/**
 * 64-bit values travel through vmpm as bigint and are shown and serialised as "0x..." strings, because
 * JSON numbers lose precision above 2^53 and guest addresses and registers use all 64 bits.
 */
export type Hex = `0x${string}`;

/** Lowercase hex with a 0x prefix, no padding: 0n -> "0x0". */
export function toHex(value: bigint | number): Hex {
  const v = typeof value === 'number' ? BigInt(value) : value;
  if (v < 0n) throw new RangeError(`toHex: negative value ${v}`);
  return `0x${v.toString(16)}`;
}

/**
 * Parses a user- or file-supplied unsigned integer: "0x..." hex, or decimal digits, with optional
 * `_` separators and K/M/G/T binary suffixes for sizes ("4K", "1G"). Returns undefined when the text
 * is not a number, so callers can word their own error.
 */
export function parseBigUint(text: string): bigint | undefined {
  const t = text.trim().replace(/_/g, '');
  const m = /^(0x[0-9a-fA-F]+|[0-9]+)([kKmMgGtT]i?[bB]?)?$/.exec(t);
  if (!m) return undefined;
  let v = BigInt(m[1]!);
  const suffix = m[2]?.[0]?.toLowerCase();
  const shift: Record<string, bigint> = { k: 10n, m: 20n, g: 30n, t: 40n };
  if (suffix !== undefined) v <<= shift[suffix]!;
  return v;
}

/** Parses "0x..." strings written by vmpm itself (schema values); throws on anything else. */
export function fromHex(text: string): bigint {
  if (!/^0x[0-9a-fA-F]+$/.test(text)) throw new RangeError(`not a 0x-prefixed hex value: ${JSON.stringify(text)}`);
  return BigInt(text);
}
