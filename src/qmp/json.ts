/**
 * JSON for QMP with exact 64-bit integers. QEMU sends and accepts int64/uint64 values (addresses,
 * sizes, register contents) that a JavaScript number cannot hold above 2^53, so:
 *  - parse: an integer literal that is not a safe integer becomes a bigint, everything else is as
 *    JSON.parse would give (safe integers stay numbers, so `query-status` looks like plain JSON);
 *  - stringify: a bigint is written as a bare JSON integer.
 */

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

/** Thrown for text that is not one JSON value; `offset` is where parsing stopped. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** Deeper nesting than any QMP message has; bounds recursion so hostile input cannot blow the stack. */
const MAX_DEPTH = 512;

export function parseJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.value(0);
  parser.skipWhitespace();
  if (parser.pos !== text.length) parser.fail('unexpected text after the JSON value');
  return value;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(what: string): never {
    const near = this.text.slice(this.pos, this.pos + 20);
    throw new JsonSyntaxError(`${what} at offset ${this.pos}${near ? ` near ${JSON.stringify(near)}` : ''}`, this.pos);
  }

  skipWhitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object(depth);
      case '[':
        return this.array(depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(c === undefined ? 'unexpected end of JSON' : 'unexpected character');
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('invalid literal');
    this.pos += word.length;
    return value;
  }

  private number(): number | bigint {
    const re = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) return this.fail('invalid number');
    this.pos = re.lastIndex;
    const literal = m[0];
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(literal);
      return Number.isSafeInteger(n) ? n : BigInt(literal);
    }
    return Number(literal);
  }

  private string(): string {
    const t = this.text;
    const start = this.pos;
    let i = start + 1;
    let simple = true;
    for (;;) {
      if (i >= t.length) {
        this.pos = i;
        this.fail('unterminated string');
      }
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        simple = false;
        i += 2;
        continue;
      }
      if (c < 0x20) {
        this.pos = i;
        this.fail('control character in string');
      }
      i++;
    }
    this.pos = i + 1;
    if (simple) return t.slice(start + 1, i);
    // Escapes are rare and JSON.parse decodes them exactly (and rejects bad ones).
    try {
      return JSON.parse(t.slice(start, i + 1)) as string;
    } catch {
      this.pos = start;
      return this.fail('invalid escape in string');
    }
  }

  private array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      out.push(this.value(depth + 1));
      this.skipWhitespace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === ']') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  private object(depth: number): { [key: string]: JsonValue } {
    this.pos++;
    const out: { [key: string]: JsonValue } = {};
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.skipWhitespace();
      const v = this.value(depth + 1);
      // Like JSON.parse: a "__proto__" key from the wire is plain data, never the prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
      this.skipWhitespace();
      const c = this.text[this.pos];
      this.pos++;
      if (c === '}') return out;
      if (c !== ',') {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }
}

/**
 * JSON.stringify with bigint support (bare integers). `indent` > 0 pretty-prints. Values JSON cannot
 * represent (undefined, functions, symbols) are dropped from objects and become null in arrays,
 * like JSON.stringify; non-finite numbers are an error rather than a silent null.
 */
export function stringifyJson(value: unknown, indent = 0): string {
  const out = write(value, indent, '', new Set());
  if (out === undefined) throw new TypeError('value has no JSON representation');
  return out;
}

function write(value: unknown, indent: number, pad: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cannot send ${value} as JSON`);
      return JSON.stringify(value);
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    default:
      break;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (seen.has(obj)) throw new TypeError('cannot serialise a circular structure as JSON');
  seen.add(obj);
  try {
    const inner = indent > 0 ? pad + ' '.repeat(indent) : '';
    const nl = indent > 0 ? '\n' : '';
    const colon = indent > 0 ? ': ' : ':';
    if (Array.isArray(obj)) {
      if (obj.length === 0) return '[]';
      const items = obj.map((v: unknown) => write(v, indent, inner, seen) ?? 'null');
      return `[${nl}${items.map((s) => inner + s).join(`,${nl}`)}${nl}${indent > 0 ? pad : ''}]`;
    }
    const toJson = (obj as { toJSON?: () => unknown }).toJSON;
    if (typeof toJson === 'function') return write(toJson.call(obj), indent, pad, seen);
    const parts: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      const s = write(v, indent, inner, seen);
      if (s !== undefined) parts.push(`${inner}${JSON.stringify(k)}${colon}${s}`);
    }
    if (parts.length === 0) return '{}';
    return `{${nl}${parts.join(`,${nl}`)}${nl}${indent > 0 ? pad : ''}}`;
  } finally {
    seen.delete(obj);
  }
}
