const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/**
 * A byte count for people, in binary units: "812 B", "217 KiB", "1.5 GiB", "64 MiB". One decimal only
 * where it carries information (below 100 and not whole). Accepts bigint and "0x..." strings, as sizes
 * in bundles are 64-bit. Every command and summary line formats sizes with this one function.
 */
export function humanBytes(value: number | bigint | string): string {
  const v = typeof value === 'string' ? Number(BigInt(value)) : Number(value);
  let x = v;
  let u = 0;
  while (x >= 1024 && u < UNITS.length - 1) {
    x /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${x >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(1)} ${UNITS[u]}`;
}
