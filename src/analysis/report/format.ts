/** Small text helpers shared by the report renderers and the CLI tables. */

/** 1536 -> "1.5 KiB"; exact below 1 KiB. Accepts bigint or "0x.." so 64-bit sizes are not rounded first. */
// One formatter for sizes everywhere (util/bytes.ts); re-exported for the report modules.
export { humanBytes } from '../../util/bytes';

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
