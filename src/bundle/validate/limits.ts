/**
 * What a reader will parse. JSON.parse of a hostile section costs far more memory than its bytes:
 * 64 MiB of `{},{},...` becomes 22 million objects and about 2 GiB of heap. So before parsing, a
 * section is checked, in one pass over its bytes, against three limits (docs/bundle-format.md):
 * its size, how many JSON values it holds, and how deeply they nest. Real sections are far below
 * them (a 256-vCPU `cpus` section is about 2 MiB and 30,000 values).
 */
export const MAX_JSON_SECTION_BYTES = 64 * 1024 * 1024;
export const MAX_JSON_VALUES = 2_000_000;
export const MAX_JSON_DEPTH = 64;

/**
 * Why `data` exceeds a limit, or undefined when it is within all of them. Counts values by their
 * separators and openings outside strings (an upper bound good enough for a limit), and never
 * allocates.
 */
export function jsonLimitProblem(data: Buffer): string | undefined {
  if (data.length > MAX_JSON_SECTION_BYTES) return `is ${data.length} bytes, over the ${MAX_JSON_SECTION_BYTES}-byte (64 MiB) limit for JSON sections`;
  let inString = false;
  let depth = 0;
  let values = 1;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) return `nests deeper than ${MAX_JSON_DEPTH} levels`;
    } else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c) {
      if (++values > MAX_JSON_VALUES) return `holds more than ${MAX_JSON_VALUES} JSON values`;
    }
  }
  return undefined;
}
