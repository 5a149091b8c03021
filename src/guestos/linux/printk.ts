/**
 * The kernel log rebuilt from guest memory, located from VMCOREINFO alone.
 *
 * Linux 5.10+ keeps it in the lockless printk ring (kernel/printk/printk_ringbuffer.{c,h}): `prb` points
 * at a struct printk_ringbuffer whose desc_ring holds 2^count_bits descriptors (state_var = 2-bit state
 * over the record id, text_blk_lpos = {begin, next} logical positions in the text ring) and as many
 * struct printk_info (seq, ts_nsec, text_len, facility, flags:5/level:3, caller_id, dev_info); the text
 * ring holds 2^size_bits bytes of blocks {unsigned long id; char text[]}. Live records run from tail_id to
 * head_id; ids and positions are unsigned longs that wrap (ids inside the 62 bits under the state bits).
 *
 * A record is read only when everything agrees: the descriptor still carries the id we expect and is
 * committed or finalized, its text block lies inside the live text window, starts with the same id and is
 * long enough for text_len, and the info's seq is congruent to the slot (the kernel's own invariant).
 * Anything else is skipped and counted by reason; nothing is guessed. Older kernels: printk-legacy.ts.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import { BlockCache } from './block-cache';
import type { KernelMemory } from './kernel-memory';
import { readLegacyLog } from './printk-legacy';
import { callerName, decodeText, type PrintkLog, type PrintkRecord, type SkipReason } from './printk-record';
import type { Vmcoreinfo } from './vmcoreinfo';

export { type PrintkLog, type PrintkRecord, type SkipReason, LOG_CONT, LOG_NEWLINE } from './printk-record';

/** The most descriptors read (2^22 = a 128 MiB log_buf_len); a larger claim is corruption. */
const MAX_COUNT_BITS = 22;
const MAX_SIZE_BITS = 31;
const ID_MASK = (1n << 62n) - 1n;
const U64 = (1n << 64n) - 1n;
const STATE_SHIFT = 62n;
const DESC_COMMITTED = 1n;
const DESC_FINALIZED = 2n;
const DESC_RESERVED = 0n;
const NO_LPOS = 3n;

export class PrintkError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'PrintkError';
  }
}

/** Reads the kernel log with whichever layout the VMCOREINFO text describes. */
export async function readPrintkLog(info: Vmcoreinfo, mem: KernelMemory): Promise<PrintkLog> {
  if (info.symbolIfAny('prb') !== undefined) return readRingLog(info, mem);
  if (info.symbolIfAny('log_buf') !== undefined) return readLegacyLog(info, mem);
  throw new PrintkError('VMCOREINFO describes no kernel log (neither SYMBOL(prb), Linux 5.10+, nor SYMBOL(log_buf))');
}

interface RingLayout {
  descSize: number;
  stateVar: number;
  lposBegin: number;
  lposNext: number;
  infoSize: number;
  seq: number;
  ts: number;
  textLen: number;
  callerId: number | undefined;
  subsystem: { at: number; len: number } | undefined;
  device: { at: number; len: number } | undefined;
}

/** Field offsets from VMCOREINFO, each checked to lie inside its structure. */
function ringLayout(info: Vmcoreinfo): RingLayout {
  const counter = info.offsetIfAny('atomic_long_t.counter') ?? 0;
  const descSize = info.size('prb_desc');
  const infoSize = info.size('printk_info');
  const lpos = info.offset('prb_desc.text_blk_lpos');
  const layout: RingLayout = {
    descSize,
    stateVar: info.offset('prb_desc.state_var') + counter,
    lposBegin: lpos + info.offset('prb_data_blk_lpos.begin'),
    lposNext: lpos + info.offset('prb_data_blk_lpos.next'),
    infoSize,
    seq: info.offset('printk_info.seq'),
    ts: info.offset('printk_info.ts_nsec'),
    textLen: info.offset('printk_info.text_len'),
    callerId: info.offsetIfAny('printk_info.caller_id'),
    subsystem: undefined,
    device: undefined,
  };
  const devInfo = info.offsetIfAny('printk_info.dev_info');
  const sub = info.offsetIfAny('dev_printk_info.subsystem');
  const dev = info.offsetIfAny('dev_printk_info.device');
  const subLen = info.lengthIfAny('printk_info_subsystem');
  const devLen = info.lengthIfAny('printk_info_device');
  if (devInfo !== undefined && sub !== undefined && subLen !== undefined) layout.subsystem = { at: devInfo + sub, len: subLen };
  if (devInfo !== undefined && dev !== undefined && devLen !== undefined) layout.device = { at: devInfo + dev, len: devLen };
  const inside = (what: string, at: number, len: number, size: number, struct: string): void => {
    if (at + len > size) throw new PrintkError(`VMCOREINFO puts ${what} at offset ${at} (+${len}) of the ${size}-byte ${struct}: inconsistent layout`);
  };
  if (descSize > 256 || infoSize > 4096) throw new PrintkError(`VMCOREINFO sizes prb_desc ${descSize} / printk_info ${infoSize} bytes: not a printk ring`);
  inside('state_var', layout.stateVar, 8, descSize, 'prb_desc');
  inside('text_blk_lpos.begin', layout.lposBegin, 8, descSize, 'prb_desc');
  inside('text_blk_lpos.next', layout.lposNext, 8, descSize, 'prb_desc');
  inside('seq', layout.seq, 8, infoSize, 'printk_info');
  inside('ts_nsec', layout.ts, 8, infoSize, 'printk_info');
  // facility and the flags/level byte follow text_len (struct printk_info; VMCOREINFO has no offsets for them).
  inside('text_len', layout.textLen, 4, infoSize, 'printk_info');
  if (layout.callerId !== undefined) inside('caller_id', layout.callerId, 4, infoSize, 'printk_info');
  if (layout.subsystem) inside('dev_info.subsystem', layout.subsystem.at, layout.subsystem.len, infoSize, 'printk_info');
  if (layout.device) inside('dev_info.device', layout.device.at, layout.device.len, infoSize, 'printk_info');
  return layout;
}

interface Ring {
  count: bigint;
  descs: bigint;
  infos: bigint;
  headId: bigint;
  tailId: bigint;
  size: bigint;
  data: bigint;
  headLpos: bigint;
  tailLpos: bigint;
}

async function ringHeader(info: Vmcoreinfo, mem: BlockCache): Promise<Ring> {
  const counter = BigInt(info.offsetIfAny('atomic_long_t.counter') ?? 0);
  const rb = await mem.u64(info.symbol('prb'));
  const descRing = rb + BigInt(info.offset('printk_ringbuffer.desc_ring'));
  const textRing = rb + BigInt(info.offset('printk_ringbuffer.text_data_ring'));
  const countBits = await mem.u32(descRing + BigInt(info.offset('prb_desc_ring.count_bits')));
  const sizeBits = await mem.u32(textRing + BigInt(info.offset('prb_data_ring.size_bits')));
  if (countBits < 1 || countBits > MAX_COUNT_BITS) throw new PrintkError(`printk ring at ${toHex(rb)} claims 2^${countBits} descriptors (expected 2^1..2^${MAX_COUNT_BITS}): not a printk ring, or corrupt`);
  if (sizeBits < 5 || sizeBits > MAX_SIZE_BITS) throw new PrintkError(`printk ring at ${toHex(rb)} claims a 2^${sizeBits}-byte text ring (expected 2^5..2^${MAX_SIZE_BITS}): not a printk ring, or corrupt`);
  return {
    count: 1n << BigInt(countBits),
    descs: await mem.u64(descRing + BigInt(info.offset('prb_desc_ring.descs'))),
    infos: await mem.u64(descRing + BigInt(info.offset('prb_desc_ring.infos'))),
    headId: (await mem.u64(descRing + BigInt(info.offset('prb_desc_ring.head_id')) + counter)) & U64,
    tailId: (await mem.u64(descRing + BigInt(info.offset('prb_desc_ring.tail_id')) + counter)) & U64,
    size: 1n << BigInt(sizeBits),
    data: await mem.u64(textRing + BigInt(info.offset('prb_data_ring.data'))),
    headLpos: await mem.u64(textRing + BigInt(info.offset('prb_data_ring.head_lpos')) + counter),
    tailLpos: await mem.u64(textRing + BigInt(info.offset('prb_data_ring.tail_lpos')) + counter),
  };
}

async function readRingLog(info: Vmcoreinfo, kmem: KernelMemory): Promise<PrintkLog> {
  const layout = ringLayout(info);
  const mem = new BlockCache(kmem);
  const ring = await ringHeader(info, mem);
  if ((ring.headId & ~ID_MASK) !== 0n || (ring.tailId & ~ID_MASK) !== 0n) {
    throw new PrintkError(`printk ring head/tail ids ${toHex(ring.headId)}/${toHex(ring.tailId)} have state bits set: not a descriptor ring`);
  }
  const live = (ring.headId - ring.tailId) & ID_MASK;
  if (live >= ring.count) {
    throw new PrintkError(`printk ring tail id ${toHex(ring.tailId)} is ${live} records behind head id ${toHex(ring.headId)}, more than its ${ring.count} descriptors: inconsistent ring`);
  }
  const records: PrintkRecord[] = [];
  const skipped: Partial<Record<SkipReason, number>> = {};
  for (let i = 0n; i <= live; i++) {
    const id = (ring.tailId + i) & ID_MASK;
    const result = await readRecord(mem, ring, layout, id);
    // A free (reusable) descriptor holds no record: the ring's initial dummy at the tail, or one the
    // kernel has just released. It is not a lost record.
    if (result === 'free') continue;
    if (typeof result === 'string') skipped[result] = (skipped[result] ?? 0) + 1;
    else records.push(result);
  }
  const skippedTotal = Object.values(skipped).reduce((a, b) => a + b, 0);
  return {
    layout: 'printk_ringbuffer',
    records,
    skipped,
    skippedTotal,
    ring: { textAddress: ring.data, textBytes: Number(ring.size), descriptors: Number(ring.count), headId: ring.headId, tailId: ring.tailId },
    ...(records[0] ? { firstSeq: records[0].seq } : {}),
  };
}

async function readRecord(mem: BlockCache, ring: Ring, layout: RingLayout, id: bigint): Promise<PrintkRecord | SkipReason> {
  const index = id & (ring.count - 1n);
  const desc = await mem.read(ring.descs + index * BigInt(layout.descSize), layout.descSize);
  const sv = desc.readBigUInt64LE(layout.stateVar);
  const state = sv >> STATE_SHIFT;
  if ((sv & ID_MASK) !== id) return 'overwritten';
  if (state === DESC_RESERVED) return 'in-progress';
  if (state !== DESC_COMMITTED && state !== DESC_FINALIZED) return 'free';
  const begin = desc.readBigUInt64LE(layout.lposBegin);
  const next = desc.readBigUInt64LE(layout.lposNext);

  const inf = await mem.read(ring.infos + index * BigInt(layout.infoSize), layout.infoSize);
  const seq = inf.readBigUInt64LE(layout.seq);
  if ((seq & (ring.count - 1n)) !== index || seq > BigInt(Number.MAX_SAFE_INTEGER)) return 'bad-sequence';
  const textLen = inf.readUInt16LE(layout.textLen);

  let text: Buffer;
  if (begin & 1n) {
    // Data-less: NO_LPOS/NO_LPOS is an empty line; FAILED_LPOS means the text could not be stored.
    if (begin !== NO_LPOS || next !== NO_LPOS) return 'no-text';
    text = Buffer.alloc(0);
  } else {
    const block = textBlock(ring, begin, next);
    if (typeof block === 'string') return block;
    if (BigInt(textLen) + 8n > block.size) return 'bad-length';
    const blockId = await mem.u64(block.at);
    if ((blockId & U64) !== id) return 'text-overwritten';
    text = await mem.read(block.at + 8n, textLen);
  }
  const flagsLevel = inf.readUInt8(layout.textLen + 3);
  const record: PrintkRecord = {
    seq: Number(seq),
    tsNsec: inf.readBigUInt64LE(layout.ts),
    level: flagsLevel >> 5,
    facility: inf.readUInt8(layout.textLen + 2),
    flags: flagsLevel & 0x1f,
    text: decodeText(text),
  };
  const caller = layout.callerId === undefined ? undefined : callerName(inf.readUInt32LE(layout.callerId));
  if (caller) record.caller = caller;
  const subsystem = layout.subsystem && cString(inf, layout.subsystem.at, layout.subsystem.len);
  const device = layout.device && cString(inf, layout.device.at, layout.device.len);
  if (subsystem) record.subsystem = subsystem;
  if (device) record.device = device;
  return record;
}

/** Where a text block's bytes are (get_data() in printk_ringbuffer.c), or why they cannot be trusted. */
function textBlock(ring: Ring, begin: bigint, next: bigint): { at: bigint; size: bigint } | SkipReason {
  if (begin % 8n !== 0n || next % 8n !== 0n) return 'bad-position';
  // The block must lie in the live window [tail_lpos, head_lpos]: older text has been overwritten.
  const fromTail = (begin - ring.tailLpos) & U64;
  const toHead = (ring.headLpos - next) & U64;
  if (fromTail > ring.size || toHead > ring.size) return 'text-overwritten';
  const wraps = (lpos: bigint): bigint => (lpos & U64) / ring.size;
  const indexOf = (lpos: bigint): bigint => lpos & (ring.size - 1n);
  let at: bigint;
  let size: bigint;
  if (wraps(begin) === wraps(next) && begin < next) {
    at = indexOf(begin);
    size = next - begin;
  } else if (wraps((begin + ring.size) & U64) === wraps(next)) {
    // A block that would cross the end of the ring is stored whole at its start (its id written at both).
    at = 0n;
    size = indexOf(next);
  } else {
    return 'bad-position';
  }
  if (size < 8n || size > ring.size) return 'bad-position';
  return { at: ring.data + at, size };
}

function cString(buf: Buffer, at: number, len: number): string | undefined {
  const bytes = buf.subarray(at, at + len);
  const nul = bytes.indexOf(0);
  const s = decodeText(nul >= 0 ? bytes.subarray(0, nul) : bytes);
  return s.length > 0 ? s : undefined;
}
