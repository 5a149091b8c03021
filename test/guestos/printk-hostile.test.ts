/**
 * The printk ring reader on rings laid out byte for byte as Linux 6.1 lays them out (the offsets of a
 * real Debian 6.1 VMCOREINFO), in states a live test guest does not reach in a test's time: ids that
 * wrap past 2^62, a text block that wraps around the end of the data ring, records overwritten
 * under the reader, and hostile headers. Each bad record is skipped and counted; each bad ring is one
 * clear error line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bufferPhysicalMemory, kernelImageMemory, PrintkError, readPrintkLog, Vmcoreinfo } from '../../src/guestos';
import { FIXTURES } from '../arch/fixtures';

const BASE_VIRT = 0xffffffff81000000n;
const BASE_PHYS = 0x1000000n;
const RB = 0x100n;
const DESCS = 0x1000n;
const INFOS = 0x2000n;
const DATA = 0x4000n;
const ID_MASK = (1n << 62n) - 1n;

const SAMPLE = readFileSync(join(FIXTURES, 'linux', 'vmcoreinfo-debian-6.1-amd64.txt'), 'latin1');
const INFO_TEXT = SAMPLE.replace(/^SYMBOL\(prb\)=.*$/m, `SYMBOL(prb)=${BASE_VIRT.toString(16)}`).replace(/^NUMBER\(phys_base\)=.*$/m, `NUMBER(phys_base)=${BASE_PHYS - (BASE_VIRT - 0xffffffff80000000n)}`);

interface RingSpec {
  countBits: number;
  sizeBits: number;
  firstId: bigint;
  firstLpos: bigint;
  texts: string[];
}

/** A 6.1 ring holding `texts` as consecutive finalized records; returns the image and a way to poke it. */
function buildRing(spec: RingSpec) {
  const img = Buffer.alloc(0x8000);
  const count = 1n << BigInt(spec.countBits);
  const size = 1n << BigInt(spec.sizeBits);
  const v = (off: bigint) => BASE_VIRT + off;
  const u64 = (off: bigint, val: bigint) => img.writeBigUInt64LE(val & ((1n << 64n) - 1n), Number(off));
  u64(0n, v(RB));
  img.writeUInt32LE(spec.countBits, Number(RB));
  u64(RB + 8n, v(DESCS));
  u64(RB + 16n, v(INFOS));
  img.writeUInt32LE(spec.sizeBits, Number(RB + 48n));
  u64(RB + 56n, v(DATA));
  let lpos = spec.firstLpos;
  const ids: bigint[] = [];
  spec.texts.forEach((text, k) => {
    const id = (spec.firstId + BigInt(k)) & ID_MASK;
    ids.push(id);
    const blk = (8n + BigInt(text.length) + 7n) & ~7n;
    let begin = lpos;
    let at = begin % size;
    let next = begin + blk;
    if (at + blk > size) {
      // data_alloc(): a block that would cross the end goes whole to the start of the next wrap.
      if (size - at >= 8n) u64(DATA + at, id);
      next = begin - at + size + blk;
      at = 0n;
    }
    u64(DATA + at, id);
    img.write(text, Number(DATA + at + 8n), 'latin1');
    const index = id & (count - 1n);
    u64(DESCS + index * 24n, (2n << 62n) | id);
    u64(DESCS + index * 24n + 8n, begin);
    u64(DESCS + index * 24n + 16n, next);
    const info = INFOS + index * 88n;
    u64(info, index + count * BigInt(k + 1)); // seq: congruent to the slot, as the kernel keeps it
    u64(info + 8n, BigInt(k + 1) * 1_000_000n);
    img.writeUInt16LE(text.length, Number(info + 16n));
    img.writeUInt8(0, Number(info + 18n));
    img.writeUInt8((6 << 5) | 2, Number(info + 19n));
    lpos = next;
    begin = next;
  });
  u64(RB + 24n, ids[ids.length - 1]!); // head_id
  u64(RB + 32n, ids[0]!); // tail_id
  u64(RB + 48n + 16n, lpos); // head_lpos
  u64(RB + 48n + 24n, spec.firstLpos); // tail_lpos
  const read = (text = INFO_TEXT) => {
    const info = Vmcoreinfo.parse(text);
    return readPrintkLog(info, kernelImageMemory(info, bufferPhysicalMemory('ring', [{ start: BASE_PHYS, data: img }])));
  };
  return { img, ids, count, u64, read };
}

const TEXTS = ['first record', 'second one', 'third: a longer line of text', 'fourth', 'fifth record here', 'sixth and last'];

describe('printk ring reader, hostile and wrapping rings', () => {
  it('reads records whose ids wrap past 2^62 back to 0, in order', async () => {
    const r = buildRing({ countBits: 3, sizeBits: 9, firstId: ID_MASK - 2n, firstLpos: 0n, texts: TEXTS });
    assert.deepEqual(r.ids.slice(2, 4), [ID_MASK, 0n]);
    const log = await r.read();
    assert.deepEqual(log.records.map((x) => x.text), TEXTS);
    assert.equal(log.skippedTotal, 0);
    assert.equal(log.records[0]!.level, 6);
    assert.equal(log.records[0]!.flags, 2);
  });

  it('reads a text block that wraps around the end of the data ring', async () => {
    const r = buildRing({ countBits: 3, sizeBits: 8, firstId: 100n, firstLpos: 256n * 5n - 16n, texts: TEXTS.slice(0, 3) });
    const log = await r.read();
    assert.deepEqual(log.records.map((x) => x.text), TEXTS.slice(0, 3));
  });

  it('skips and counts records overwritten or inconsistent, never guessing', async () => {
    const r = buildRing({ countBits: 3, sizeBits: 9, firstId: 40n, firstLpos: 0n, texts: TEXTS });
    const slot = (k: number) => r.ids[k]! & (r.count - 1n);
    r.u64(DESCS + slot(1) * 24n, (2n << 62n) | (r.ids[1]! + 8n)); // descriptor reused by a newer id
    r.u64(DATA + r.img.readBigUInt64LE(Number(DESCS + slot(2) * 24n + 8n)), 999n); // text block reused
    r.img.writeUInt16LE(400, Number(INFOS + slot(3) * 88n + 16n)); // text_len beyond its block
    r.u64(INFOS + slot(4) * 88n, 12345n); // seq not congruent to its slot
    r.u64(DESCS + slot(5) * 24n, (0n << 62n) | r.ids[5]!); // still reserved by a writer
    const log = await r.read();
    assert.deepEqual(log.records.map((x) => x.text), [TEXTS[0]]);
    assert.deepEqual(log.skipped, { overwritten: 1, 'text-overwritten': 1, 'bad-length': 1, 'bad-sequence': 1, 'in-progress': 1 });
    assert.equal(log.skippedTotal, 5);
  });

  const oneLine = (re: RegExp) => (e: unknown) => e instanceof Error && re.test(e.message) && !e.message.includes('\n');

  it('refuses a ring claiming absurd sizes, or a tail more records behind than it has slots', async () => {
    const r = buildRing({ countBits: 3, sizeBits: 9, firstId: 40n, firstLpos: 0n, texts: TEXTS });
    r.img.writeUInt32LE(40, Number(RB));
    await assert.rejects(r.read(), oneLine(/claims 2\^40 descriptors/));
    r.img.writeUInt32LE(3, Number(RB));
    r.u64(RB + 32n, 1n); // tail_id far behind head_id
    await assert.rejects(r.read(), (e: unknown) => e instanceof PrintkError && /behind head id .* more than its 8 descriptors/.test(e.message));
    r.u64(RB + 32n, 3n << 62n);
    await assert.rejects(r.read(), oneLine(/have state bits set/));
  });

  it('refuses VMCOREINFO with absurd offsets, missing keys, or a prb that points nowhere', async () => {
    const r = buildRing({ countBits: 3, sizeBits: 9, firstId: 40n, firstLpos: 0n, texts: TEXTS });
    await assert.rejects(r.read(INFO_TEXT.replace('OFFSET(printk_info.seq)=0', 'OFFSET(printk_info.seq)=4000')), oneLine(/puts seq at offset 4000 \(\+8\) of the 88-byte printk_info/));
    await assert.rejects(r.read(INFO_TEXT.replace(/^SIZE\(prb_desc\)=.*\n/m, '')), oneLine(/VMCOREINFO SIZE\(prb_desc\) is missing/));
    await assert.rejects(r.read(INFO_TEXT.replace(/^SYMBOL\(prb\)=.*\n/m, '')), oneLine(/describes no kernel log/));
    r.u64(0n, 0xffff888000000000n);
    await assert.rejects(r.read(), oneLine(/kernel address 0xffff888000000000 is outside what the x86_64 kernel image map/));
  });
});
