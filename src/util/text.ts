/** "1 vCPU", "2 vCPUs", "1 error record", "3 entries" (with `many` for irregular plurals). */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
