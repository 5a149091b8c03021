/**
 * Malformed, truncated and hostile dumps given to `vmpm import`: lengths past the end, overlapping
 * PT_LOADs, a PT_NOTE claiming 10^9 notes (and one really holding 87,381), kdump headers whose
 * bitmaps or page descriptors point outside the file, and flattened streams that seek backwards
 * forever or never end. Each must end in one `vmpm: ...` line, exit 1, within seconds, with a small
 * heap (the child runs with --max-old-space-size=96), and leave no output file behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { vmpm } from './tools';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-interop-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string): string => join(dir, name);

let elf: Buffer; // head of a real export: ELF header, 2 program headers, notes (the data is sparse)
let kdump: Buffer; // a whole real kdump export (about half a MiB)

before(async () => {
  await vmpm(['export', SAMPLE, '--format', 'elf', '-o', p('good.elf')]);
  await vmpm(['export', SAMPLE, '--format', 'kdump', '-o', p('good.kdump')]);
  elf = readFileSync(p('good.elf')).subarray(0, 4096);
  kdump = readFileSync(p('good.kdump'));
});

async function refused(name: string, data: Buffer | undefined, pattern: RegExp): Promise<void> {
  const file = p(name);
  if (data) writeFileSync(file, data);
  const output = p(`${name}.vmpm`);
  const t0 = performance.now();
  const r = await runCli(['import', file, '-o', output], { timeoutMs: 30_000, env: { NODE_OPTIONS: '--max-old-space-size=96' } });
  const ms = performance.now() - t0;
  assert.equal(r.code, 1, `exit ${r.code}; stderr: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^vmpm: /);
  assert.match(lines[0]!, pattern);
  assert.ok(ms < 20_000, `took ${Math.round(ms)} ms`);
  assert.equal(existsSync(output), false, 'no output left behind');
}

function elfWith(edit: (b: Buffer) => void, size = elf.length): Buffer {
  const b = Buffer.alloc(size);
  elf.copy(b, 0, 0, Math.min(size, elf.length));
  edit(b);
  return b;
}
const PH = 64; // program headers right after the ELF header (vmpm's layout)
const LOAD = PH + 56;

describe('hostile ELF dumps', () => {
  it('not a dump at all', () => refused('random.bin', Buffer.from('hello, this is not a memory dump at all'.repeat(4)), /not a dump vmpm imports/));
  it('truncated: the PT_LOAD runs past the end of the file', async () => {
    writeFileSync(p('trunc.elf'), readFileSync(p('good.elf')));
    truncateSync(p('trunc.elf'), 200_000);
    await refused('trunc.elf', undefined, /PT_LOAD #1 .* extends past the end of the 200000-byte file/);
  });
  it('program headers past the end', () => refused('phoff.elf', elfWith((b) => b.writeBigUInt64LE(1n << 40n, 32)), /program headers.*past the end/));
  it('no program headers', () => refused('phnum0.elf', elfWith((b) => b.writeUInt16LE(0, 56)), /implausible program header table/));
  it('overlapping PT_LOADs', () =>
    refused(
      'overlap.elf',
      elfWith((b) => {
        b.writeUInt16LE(3, 56);
                // Load #1: physical 0..0x2000 at file 0x1000; load #2: physical 0x1000..0x2000 at file 0x3000.
        b.copy(b, LOAD + 56, LOAD, LOAD + 56);
        b.writeBigUInt64LE(0x2000n, LOAD + 32);
        b.writeBigUInt64LE(0x2000n, LOAD + 40);
        b.writeBigUInt64LE(0x3000n, LOAD + 56 + 8);
        b.writeBigUInt64LE(0x1000n, LOAD + 56 + 16);
        b.writeBigUInt64LE(0x1000n, LOAD + 56 + 24);
        b.writeBigUInt64LE(0x1000n, LOAD + 56 + 32);
        b.writeBigUInt64LE(0x1000n, LOAD + 56 + 40);
      }, 0x4000),
      /PT_LOADs #1 and #2 overlap at physical 0x1000/,
    ));
  it('a PT_NOTE claiming 10^9 notes (12 GB) is refused from the header alone', () =>
    refused('notes1e9.elf', elfWith((b) => b.writeBigUInt64LE(12n * 10n ** 9n, PH + 32)), /PT_NOTE #0 .* extends past the end/));
  it('a PT_NOTE really holding 87,381 empty notes', () => {
    const notes = 87_381 * 12;
    return refused(
      'notes-many.elf',
      elfWith((b) => {
        b.writeBigUInt64LE(0x100000n, PH + 8);
        b.writeBigUInt64LE(BigInt(notes), PH + 32);
        b.writeBigUInt64LE(0x1000n, LOAD + 32);
        b.writeBigUInt64LE(0x1000n, LOAD + 40);
        for (let i = 0; i < 87_381; i++) b.writeUInt32LE(0, 0x100000 + i * 12 + 8);
      }, 0x100000 + notes),
      /more than 65536 notes/,
    );
  });
});

describe('hostile kdump files', () => {
  it('bitmaps past the end of the file', () => refused('bitmap.kdump', (() => {
    const b = Buffer.from(kdump.subarray(0, 8192));
    b.writeUInt32LE(0x7ffffffe, 436);
    return b;
  })(), /bitmaps .* past the end/));
  it('max_mapnr beyond the bitmap', () => refused('mapnr.kdump', (() => {
    const b = Buffer.from(kdump);
    b.writeBigUInt64LE(1n << 50n, 4096 + 96);
    return b;
  })(), /max_mapnr .* needs more bitmap/));
  it('a page descriptor pointing past the end', () => refused('desc.kdump', (() => {
    const b = Buffer.from(kdump);
    const subHdr = b.readUInt32LE(432);
    const bitmapBlocks = b.readUInt32LE(436);
    const descs = (1 + subHdr + bitmapBlocks) * 4096;
    b.writeBigUInt64LE(1n << 40n, descs + 24 * 3);
    return b;
  })(), /past the end/));
  it('truncated in the page data', () => refused('trunc.kdump', kdump.subarray(0, kdump.length - 4000), /past the end/));
  it('a page that does not decompress', () => refused('zlib.kdump', (() => {
    const b = Buffer.from(kdump);
    const descs = (1 + b.readUInt32LE(432) + b.readUInt32LE(436)) * 4096;
    // The first descriptor with zlib data other than the shared zero page: scribble on its data.
    for (let i = 0; i < 16384; i++) {
      const at = descs + i * 24;
      if (b.readUInt32LE(at + 12) === 1 && b.readUInt32LE(at + 8) > 100) {
        b.fill(0x55, Number(b.readBigUInt64LE(at)), Number(b.readBigUInt64LE(at)) + 32);
        break;
      }
    }
    return b;
  })(), /zlib data does not decompress/));
});

/** A flattened stream: header, then records {offset, size, data} (big-endian), optionally the end marker. */
function flattened(records: Array<[bigint, Buffer]>, end = true): Buffer {
  const head = Buffer.alloc(4096);
  head.write('makedumpfile', 0, 'latin1');
  head.writeBigInt64BE(1n, 16);
  head.writeBigInt64BE(1n, 24);
  const parts: Buffer[] = [head];
  for (const [offset, data] of records) {
    const rh = Buffer.alloc(16);
    rh.writeBigInt64BE(offset, 0);
    rh.writeBigInt64BE(BigInt(data.length), 8);
    parts.push(rh, data);
  }
  if (end) {
    const e = Buffer.alloc(16, 0xff);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

describe('hostile flattened streams', () => {
  it('seeking backwards forever, never ending: 500,000 records rewriting offset 0', () => {
    const one = Buffer.alloc(16, 0x41);
    return refused('backwards.flat', flattened(Array.from({ length: 500_000 }, () => [0n, one] as [bigint, Buffer]), false), /without its end marker .*500000 records/);
  });
  it('a record claiming more data than the file holds', () => {
    const b = flattened([[0n, Buffer.alloc(64)]]);
    b.writeBigInt64BE(1n << 40n, 4096 + 8);
    return refused('size.flat', b, /claims 1099511627776 bytes of data, past the end/);
  });
  it('a record at a negative offset', () => refused('negative.flat', flattened([[-4096n, Buffer.alloc(64)]]), /offset -4096/));
  it('a record far beyond any plausible dump', () => refused('far.flat', flattened([[1n << 52n, Buffer.alloc(64)]]), /beyond any plausible dump/));
  it('a well-formed stream that reassembles into something that is not a kdump', () => refused('notkdump.flat', flattened([[0n, Buffer.alloc(8192, 0x20)]]), /signature/));
  it('a real kdump export wrapped as a flattened stream, records in reverse order, imports', async () => {
    const chunks: Array<[bigint, Buffer]> = [];
    for (let off = 0; off < kdump.length; off += 65536) chunks.push([BigInt(off), Buffer.from(kdump.subarray(off, off + 65536))]);
    writeFileSync(p('reverse.flat'), flattened(chunks.reverse()));
    await vmpm(['import', p('reverse.flat'), '-o', p('reverse.vmpm')]);
    const d = JSON.parse(await vmpm(['diff', SAMPLE, p('reverse.vmpm'), '--json'])) as { memory: { counts: { changedPages: number; unchangedPages: number } } };
    assert.equal(d.memory.counts.changedPages, 0);
    assert.equal(d.memory.counts.unchangedPages, 16384);
  });
});
