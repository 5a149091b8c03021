/** Small text helpers shared by the report renderers and the CLI tables. */

/** 1536 -> "1.5 KiB"; exact below 1 KiB. Accepts bigint or "0x.." so 64-bit sizes are not rounded first. */
export function humanBytes(value: number | bigint | string): string {
  const v = typeof value === 'string' ? Number(BigInt(value)) : Number(value);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let x = v;
  let u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${x >= 100 || Number.isInteger(x) ? x.toFixed(0) : x.toFixed(1)} ${units[u]}`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
