import { MAX_TIMER_MS } from '../../util/time';
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

/** A whole number option ("0", "42"); `min` (default 0) is the smallest value accepted. */
export function parseSmallInt(text: string, option: string, min = 0): number {
  const kind = min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer of at least ${min}`;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${option} expects ${kind}, got ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${option} ${text} is too large`);
  if (n < min) throw new UsageError(`${option} expects ${kind}, got ${JSON.stringify(text)}`);
  return n;
}

/** A duration in whole milliseconds; 0 is accepted only with `allowZero` (a timeout of 0 makes no sense). */
export function parseMilliseconds(text: string, option: string, options: { allowZero?: boolean } = {}): number {
  const n = Number(text);
  const ok = /^\d+$/.test(text.trim()) && Number.isSafeInteger(n) && (n > 0 || options.allowZero === true);
  if (!ok) throw new UsageError(`${option} expects a ${options.allowZero ? 'whole' : 'positive whole'} number of milliseconds, got ${JSON.stringify(text)}`);
  // Node's timers overflow above 2^31-1 ms (they fire at once): say so instead of misbehaving.
  if (n > MAX_TIMER_MS) throw new UsageError(`${option} is at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${text.trim()}`);
  return n;
}
