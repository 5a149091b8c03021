/**
 * The kallsyms decoder against tables written here the way scripts/kallsyms.c writes them (token
 * table + index, length-prefixed token strings, 32-bit offsets), in every encoding the kernel has
 * used, and against hostile tables: each is one clear error, in bounded time and memory. The real
 * Debian 6.1 kernel is decoded in test/linux/vaddr.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vmcoreinfo, bufferPhysicalMemory } from '../../src/guestos';
import { decodeKallsyms, KallsymsError } from '../../src/guestos/linux/kallsyms';
import { formatSymbol } from '../../src/guestos/linux/symbols';

const KBASE = 0xffff_ffff_8100_0000n;
const TEXT = 0xffff_ffff_8120_0000n;

interface Sym {
  type: string;
  name: string;
  address: bigint;
}

type AddrEncoding = 'percpu' | 'base' | 'place' | 'absolute';

/** Token byte b expands to the character b for printable ASCII; 0x80.. are multi-character tokens. */
const MULTI = ['sysrq_', 'handle_', 'crash', '_text', 'panic', 'write_', 'trigger'];
function tokenFor(b: number): string {
  if (b >= 0x80 && b - 0x80 < MULTI.length) return MULTI[b - 0x80]!;
  if (b >= 0x21 && b < 0x7f) return String.fromCharCode(b);
  return `~${b.toString(16)}`;
}
function encodeName(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; ) {
    const m = MULTI.findIndex((t) => text.startsWith(t, i));
    if (m >= 0) {
      out.push(0x80 + m);
      i += MULTI[m]!.length;
    } else out.push(text.charCodeAt(i++));
  }
  return out;
}

/** Lays the tables out at KBASE + fixed offsets and returns memory, VMCOREINFO and a reader. */
function image(syms: Sym[], opts: { long: boolean; enc: AddrEncoding; release?: string; mutate?: (img: Buffer, at: Record<string, number>) => void }) {
  const img = Buffer.alloc(1 << 20);
  const at = { num: 0x100, base: 0x108, offsets: 0x1000, names: 0x40000, tokenTable: 0x80000, tokenIndex: 0x81000 };
  img.writeUInt32LE(syms.length, at.num);
  const base = TEXT;
  img.writeBigUInt64LE(base, at.base);
  syms.forEach((s, i) => {
    if (opts.enc === 'absolute') img.writeBigUInt64LE(s.address, at.offsets + i * 8);
    else if (opts.enc === 'base') img.writeUInt32LE(Number(s.address - base), at.offsets + i * 4);
    else if (opts.enc === 'percpu') img.writeInt32LE(s.address < 0x1_0000_0000n ? Number(s.address) : Number(base - 1n - s.address), at.offsets + i * 4);
    else img.writeInt32LE(Number(s.address - (KBASE + BigInt(at.offsets + i * 4))), at.offsets + i * 4);
  });
  let off = at.names;
  for (const s of syms) {
    const bytes = encodeName(s.type + s.name);
    if (bytes.length > 127) {
      if (!opts.long) throw new Error('a name this long needs the 6.1 encoding');
      img[off++] = (bytes.length & 0x7f) | 0x80;
      img[off++] = bytes.length >> 7;
    } else img[off++] = bytes.length;
    for (const b of bytes) img[off++] = b;
  }
  let t = 0;
  for (let b = 0; b < 256; b++) {
    img.writeUInt16LE(t, at.tokenIndex + b * 2);
    t += img.write(`${tokenFor(b)}\0`, at.tokenTable + t, 'latin1');
  }
  opts.mutate?.(img, at);
  const va = (o: number) => (KBASE + BigInt(o)).toString(16);
  const stext = syms.find((s) => s.name === '_stext')!.address.toString(16);
  const text = [
    `OSRELEASE=${opts.release ?? '6.1.0-57-amd64'}`,
    'PAGESIZE=4096',
    `SYMBOL(_stext)=${stext}`,
    `SYMBOL(kallsyms_names)=${va(at.names)}`,
    `SYMBOL(kallsyms_num_syms)=${va(at.num)}`,
    `SYMBOL(kallsyms_token_table)=${va(at.tokenTable)}`,
    `SYMBOL(kallsyms_token_index)=${va(at.tokenIndex)}`,
    opts.enc === 'absolute' ? `SYMBOL(kallsyms_addresses)=${va(at.offsets)}` : `SYMBOL(kallsyms_offsets)=${va(at.offsets)}`,
    ...(opts.enc === 'base' || opts.enc === 'percpu' ? [`SYMBOL(kallsyms_relative_base)=${va(at.base)}`] : []),
    '',
  ].join('\n');
  const mem = bufferPhysicalMemory('kallsyms-test', [{ start: 0n, data: img }]);
  return { info: Vmcoreinfo.parse(text), read: (virt: bigint, n: number) => mem.read(virt - KBASE, n) };
}

const SYMS: Sym[] = [
  { type: 'A', name: 'fixed_percpu_data', address: 0x0n },
  { type: 'A', name: 'cpu_number', address: 0x2_0000n },
  { type: 'T', name: '_text', address: TEXT },
  { type: 'T', name: '_stext', address: TEXT },
  { type: 'T', name: 'panic', address: TEXT + 0x100n },
  { type: 't', name: 'sysrq_handle_crash', address: TEXT + 0x400n },
  { type: 't', name: 'write_sysrq_trigger', address: TEXT + 0x420n },
  { type: 'D', name: 'x'.repeat(200), address: TEXT + 0x1000n },
  { type: 'B', name: '_end', address: TEXT + 0x2000n },
];

test('decodes every address encoding and both name encodings, and says which it found', async () => {
  const cases: Array<[AddrEncoding, boolean, RegExp, RegExp]> = [
    ['percpu', true, /absolute per-cpu/, /ULEB128/],
    ['base', true, /kallsyms_relative_base \+ u32/, /ULEB128/],
    ['place', true, /place-relative/, /ULEB128/],
    ['absolute', false, /kallsyms_addresses/, /one-byte/],
  ];
  for (const [enc, long, addrRe, nameRe] of cases) {
    // Without the long name, the 6.0 one-byte encoding; per-cpu symbols need the absolute-percpu form.
    const syms = SYMS.filter((s) => (long || s.name.length < 100) && (enc === 'percpu' || s.type !== 'A'));
    const { info, read } = image(syms, { long, enc, release: long ? '6.1.0' : '6.0.0' });
    const { table, kallsyms } = await decodeKallsyms(info, read);
    assert.match(kallsyms.addresses, addrRe, enc);
    assert.match(kallsyms.names, nameRe, enc);
    assert.equal(kallsyms.count, syms.length);
    assert.equal(formatSymbol(table.lookup(TEXT + 0x416n)!), 'sysrq_handle_crash+0x16/0x20');
    assert.equal(table.find('write_sysrq_trigger')[0]?.address, TEXT + 0x420n);
    assert.equal(table.lookup(TEXT - 1n), undefined, 'below _text: no symbol');
    if (long) assert.equal(table.find('x'.repeat(200))[0]?.type, 'D');
    if (enc === 'percpu') assert.equal(table.find('cpu_number')[0]?.address, 0x2_0000n);
  }
});

test('a 6.1 table is still found when OSRELEASE suggests the old name encoding (both are tried)', async () => {
  const { info, read } = image(SYMS.filter((s) => s.type !== 'A'), { long: true, enc: 'base', release: '5.19.0' });
  const { kallsyms } = await decodeKallsyms(info, read);
  assert.match(kallsyms.names, /ULEB128/);
});

test('hostile kallsyms: one clear error each, bounded', async () => {
  const syms = SYMS.filter((s) => s.type !== 'A');
  const cases: Array<[string, (img: Buffer, at: Record<string, number>) => void, RegExp]> = [
    ['absurd count', (img, at) => img.writeUInt32LE(0xffffffff, at.num!), /kallsyms_num_syms at 0x[0-9a-f]+ says 4294967295 symbols: not a plausible symbol table/],
    ['count past the names', (img, at) => img.writeUInt32LE(3_000_000, at.num!), /kallsyms_names at 0x[0-9a-f]+ does not decode with either known name encoding|runs past/],
    ['unsorted offsets', (img, at) => img.writeUInt32LE(0x10, at.offsets! + 5 * 4), /kallsyms addresses are not in ascending order at symbol 5/],
    ['offsets that miss _stext', (img, at) => img.writeUInt32LE(0x777, at.offsets! + 1 * 4), /no known kallsyms address encoding reproduces VMCOREINFO's _stext 0xffffffff81200000/],
    ['zero-length names', (img, at) => img.fill(0, at.names!, at.names! + 64), /does not decode with either known name encoding \(ULEB128 lengths .*: symbol 0 has 0 tokens; one-byte lengths .*: symbol 0 has 0 tokens\)/],
    ['control characters in names', (img, at) => img.fill(0x01, at.names! + 1, at.names! + 3), /symbol 0 decodes to/],
    ['token without NUL', (img, at) => img.fill(0x41, at.tokenTable!, at.tokenTable! + 0x1000), /kallsyms token \d+ at 0x[0-9a-f]+ has no terminating NUL/],
  ];
  for (const [what, mutate, re] of cases) {
    const { info, read } = image(syms, { long: true, enc: 'base', mutate });
    const started = performance.now();
    const before = process.memoryUsage().rss;
    await assert.rejects(decodeKallsyms(info, read), (err: unknown) => {
      assert.ok(err instanceof Error && (err instanceof KallsymsError || err.name === 'VmpmError'), `${what}: ${String(err)}`);
      assert.match(err.message, re, what);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.ok(performance.now() - started < 2000, `${what} took ${performance.now() - started} ms`);
    assert.ok(process.memoryUsage().rss - before < 256 << 20, `${what} grew RSS by ${(process.memoryUsage().rss - before) >> 20} MiB`);
  }
  const missing = Vmcoreinfo.parse('OSRELEASE=6.1.0\nSYMBOL(_stext)=ffffffff81000000\n');
  await assert.rejects(decodeKallsyms(missing, async () => Buffer.alloc(0)), /VMCOREINFO lacks SYMBOL\(kallsyms_names\), SYMBOL\(kallsyms_token_table\), .*use --system-map FILE/);
});
