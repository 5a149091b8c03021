import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeDeviceState, MigrationFormatError, MigrationStreamParser, x86CpusFromDeviceState, type MigrationRecord } from '../../src/formats/migration';
import { blockList, deviceTail, eos, fill, footer, header, page, ramPart, ramStart, rawRecord, validStream } from './migration-builder';

type Seen = Array<[string, number, string]>;

function parseAll(stream: Buffer, chunk = stream.length, maxTailBytes?: number): { seen: Seen; parser: MigrationStreamParser } {
  const parser = new MigrationStreamParser(maxTailBytes === undefined ? {} : { maxTailBytes });
  const seen: Seen = [];
  const take = (recs: MigrationRecord[]): void => {
    for (const r of recs) {
      if (r.kind === 'blocks') seen.push(['blocks', r.blocks.length, r.blocks.map((b) => `${b.id}:${b.length}`).join(',')]);
      else if (r.kind === 'page') seen.push([r.block.id, r.offset, r.data.toString('hex', 0, 4) + r.data.length]);
      else seen.push([r.block.id, r.offset, `fill ${r.fill}`]);
    }
  };
  for (let i = 0; i < stream.length; i += chunk) take(parser.push(stream.subarray(i, i + chunk)));
  return { seen, parser };
}

const EXPECTED: Seen = [
  ['blocks', 2, 'pc.ram:16384,pc.rom:4096'],
  ['pc.ram', 8192, 'aaaaaaaa4096'],
  ['pc.ram', 0, 'fill 0'],
  ['pc.ram', 12288, 'fill 90'],
  ['pc.rom', 0, '000000004096'],
];

test('a QEMU-shaped stream gives its block list, pages and fills in stream order, whatever the chunking', () => {
  const { stream } = validStream();
  const expected: Seen = [...EXPECTED, ['pc.ram', 4096, 'aaaaaaaa4096']];
  for (const chunk of [stream.length, 4096, 1000, 7, 1]) {
    const { seen, parser } = parseAll(stream, chunk);
    assert.deepEqual(seen, expected, `chunk ${chunk}`);
    const end = parser.end();
    assert.equal(end.machine, 'pc-i440fx-7.2');
    assert.deepEqual(end.stats, { pageRecords: 3, fillRecords: 2, ramParts: 2 });
  }
});

test('device state decodes through the vmdesc: arrays, structs, signed ints, subsections; x86 names', () => {
  const { stream } = validStream();
  const { parser } = parseAll(stream);
  const state = decodeDeviceState(parser.end().tail);
  assert.equal(state.sections.length, 1);
  const f = state.sections[0]!.fields;
  assert.equal(f.get('env.regs[1]'), 0x2222n);
  assert.equal(f.get('env.segs[0].base'), 0x12340n);
  assert.equal(f.get('env.a20_mask'), -1n);
  assert.equal(f.get('cpu/extra.env.eflags'), 0x46n);
  const [cpu] = x86CpusFromDeviceState(state);
  assert.equal(cpu!.registers.rax, 0x1111n);
  assert.equal(cpu!.registers.rcx, 0x2222n);
  assert.equal(cpu!.registers.rip, 0x7c60n);
  assert.equal(cpu!.registers['es.selector'], 0x1234n);
});

/** Streams that must be refused, each with the words the one-line error must contain. */
const HOSTILE: Array<[string, () => Buffer, RegExp]> = [
  ['bad magic', () => Buffer.concat([Buffer.from('QEVX'), Buffer.alloc(8)]), /not a QEMU migration stream/],
  ['version 2', () => Buffer.concat([Buffer.from('QEVM'), Buffer.from([0, 0, 0, 2])]), /version 2 is not supported/],
  ['unknown section type', () => Buffer.concat([header(), Buffer.from([0x42])]), /unknown section type 0x42/],
  ['xbzrle page', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), rawRecord(0x40n)]), /flags 0x40 are not supported/],
  ['compressed page', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), rawRecord(0x100n)]), /flags 0x100/],
  ['PAGE and ZERO at once', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), rawRecord(0x0an)]), /flags 0xa/],
  ['block list that does not add up', () => Buffer.concat([header(), ramStart(), blockList([['a', 4096], ['b', 8192]], 8192)]), /add up/],
  ['block listed twice', () => Buffer.concat([header(), ramStart(), blockList([['a', 4096], ['a', 4096]])]), /listed twice/],
  ['page of an unknown block', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), page(0, Buffer.alloc(4096), 'nope')]), /not in the block list/],
  ['page past its block', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 8192]]), page(8192, Buffer.alloc(4096), 'pc.ram')]), /outside RAM block/],
  ['huge offset', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 8192]]), rawRecord((1n << 62n) | 0x02n, Buffer.from([6, 0x70, 0x63, 0x2e, 0x72, 0x61, 0x6d, 0]))]), /outside RAM block/],
  ['CONTINUE with no block before', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), fill(0, 0)]), /no block was named/],
  ['footer for another section', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), eos(), footer(9)]), /footer names section 9/],
  ['a part of a section never started', () => Buffer.concat([header(), ramStart(), blockList([['pc.ram', 4096]]), eos(), ramPart(5)]), /unknown section 5/],
  ['device state before any block list', () => Buffer.concat([header(), deviceTail()]), /before any RAM block list/],
];

for (const [name, build, message] of HOSTILE) {
  test(`hostile stream refused with a one-line error: ${name}`, () => {
    assert.throws(
      () => {
        const { parser } = parseAll(build());
        parser.end();
      },
      (err: unknown) => err instanceof MigrationFormatError && message.test(err.message) && !err.message.includes('\n'),
    );
  });
}

test('truncation anywhere is an error at end(), never a silent short capture', () => {
  const { stream } = validStream();
  const tailStart = stream.length - deviceTail().length;
  // Cut inside the header, the block list, a page, a fill record: every one must fail at end().
  for (const cut of [3, 20, 40, 200, 4000, tailStart - 3]) {
    const { parser } = parseAll(stream.subarray(0, cut));
    assert.throws(() => parser.end(), /truncated/, `cut at ${cut}`);
  }
  // Cut inside the device state: RAM is whole, but the device state does not decode.
  const { parser } = parseAll(stream.subarray(0, stream.length - 10));
  assert.throws(() => decodeDeviceState(parser.end().tail), /vmdesc/);
});

test('device state beyond the tail bound is refused while streaming', () => {
  const { stream } = validStream();
  assert.throws(() => parseAll(stream, 64, 100), /larger than 100 bytes/);
});

test('a vmdesc that lies about sizes or lists a device the stream lacks is refused', () => {
  const tail = deviceTail();
  const json = JSON.parse(tail.subarray(tail.indexOf('{')).toString()) as { devices: Array<{ fields: Array<{ size: number }>; name: string }> };
  const rebuild = (mutate: (d: typeof json) => void): Buffer => {
    const copy = structuredClone(json);
    mutate(copy);
    const body = tail.subarray(0, tail.indexOf('{') - 4);
    const j = Buffer.from(JSON.stringify(copy));
    const len = Buffer.alloc(4);
    len.writeUInt32BE(j.length);
    return Buffer.concat([body, len, j]);
  };
  assert.throws(() => decodeDeviceState(rebuild((d) => (d.devices[0]!.fields[0]!.size = 1 << 20))), /device field \(1048576 bytes at offset 17\) is past the end/);
  assert.throws(() => decodeDeviceState(rebuild((d) => (d.devices[0]!.name = 'other'))), /not in the vmdesc/);
  assert.throws(() => decodeDeviceState(rebuild((d) => (d.devices[0]!.fields = 'x' as never))), /has no fields/);
  assert.throws(() => decodeDeviceState(Buffer.from('{"page_size":4096}')), /without a vmdesc/);
});
