import { UsageError } from '../../util/errors';
import { parseBigUint } from '../../util/hex';

/** A guest-physical address option ("0x7c00", "31744", "1M"). */
export function parseAddress(text: string, option: string): bigint {
  const v = parseBigUint(text);
  if (v === undefined || v >= 1n << 64n) throw new UsageError(`${option} expects an address like 0x7c00, got ${JSON.stringify(text)}`);
  return v;
}

/** A positive byte count or number ("256", "0x100", "4K"). */
export function parseCount(text: string, option: string, max: bigint = 1n << 62n): bigint {
  const v = parseBigUint(text);
  if (v === undefined || v <= 0n) throw new UsageError(`${option} expects a positive number, got ${JSON.stringify(text)}`);
  if (v > max) throw new UsageError(`${option} ${text} is too large (at most ${max})`);
  return v;
}

export function parseSmallInt(text: string, option: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${option} expects a non-negative integer, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${option} ${text} is too large`);
  return n;
}
