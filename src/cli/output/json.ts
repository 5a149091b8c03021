/**
 * JSON on stdout: 2-space indented, one trailing newline. bigint values (should any reach here) are
 * written as "0x..." strings so 64-bit values are never rounded.
 */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(formatJson(value));
}
