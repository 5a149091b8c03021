/**
 * The kernel log of Linux 3.5 .. 5.9: `log_buf` (a pointer to log_buf_len bytes) holds variable-length
 * records, struct printk_log (named `log` before 3.11): u64 ts_nsec; u16 len; u16 text_len; u16 dict_len;
 * u8 facility; u8 flags:5, level:3; then text, then dict. The live records run from log_first_idx to
 * log_next_idx; a record header with len 0 means "continue at offset 0" (the ring wrapped).
 *
 * Only what VMCOREINFO publishes is used (SYMBOL(log_buf), log_buf_len, log_first_idx, log_next_idx,
 * log_first_seq when present, SIZE/OFFSET of printk_log). A record whose length runs past the buffer or
 * past its own header ends the walk: the chain cannot be followed further without guessing, so the
 * rest is counted as skipped ('bad-length').
 */
import { toHex } from '../../util/hex';
import { BlockCache } from './block-cache';
import type { KernelMemory } from './kernel-memory';
import { callerName, decodeText, type PrintkLog, type PrintkRecord } from './printk-record';
import type { Vmcoreinfo } from './vmcoreinfo';
import { VmpmError } from '../../util/errors';

const MAX_LOG_BUF = 1 << 30;

export async function readLegacyLog(info: Vmcoreinfo, kmem: KernelMemory): Promise<PrintkLog> {
  const mem = new BlockCache(kmem);
  const struct = info.sizeIfAny('printk_log') !== undefined ? 'printk_log' : 'log';
  const hdr = info.size(struct);
  const tsOff = info.offset(`${struct}.ts_nsec`);
  const lenOff = info.offset(`${struct}.len`);
  const textLenOff = info.offset(`${struct}.text_len`);
  // dict_len, facility and flags/level follow text_len in every version of the struct.
  const callerOff = info.offsetIfAny(`${struct}.caller_id`);
  if (hdr > 64 || tsOff + 8 > hdr || lenOff + 2 > hdr || textLenOff + 6 > hdr) throw new VmpmError(`VMCOREINFO's ${struct} layout (size ${hdr}) is inconsistent`);

  const buf = await mem.u64(info.symbol('log_buf'));
  const size = await mem.u32(info.symbol('log_buf_len'));
  const first = await mem.u32(info.symbol('log_first_idx'));
  const next = await mem.u32(info.symbol('log_next_idx'));
  const firstSeqAt = info.symbolIfAny('log_first_seq');
  let seq = firstSeqAt === undefined ? 0 : Number((await mem.u64(firstSeqAt)) & 0xffffffffffffn);
  if (size < hdr || size > MAX_LOG_BUF || first >= size || next >= size) {
    throw new VmpmError(`log_buf at ${toHex(buf)} claims ${size} bytes with first/next records at ${first}/${next}: inconsistent`);
  }
  const records: PrintkRecord[] = [];
  let badLength = 0;
  let idx = first;
  // Each record is at least a header long, so this bounds the walk whatever the data says.
  for (let steps = 0; idx !== next && steps <= size / hdr + 1; steps++) {
    if (idx + hdr > size) {
      badLength++;
      break;
    }
    const h = await mem.read(buf + BigInt(idx), hdr);
    const len = h.readUInt16LE(lenOff);
    if (len === 0) {
      if (idx === 0) break;
      idx = 0; // wrapped
      continue;
    }
    const textLen = h.readUInt16LE(textLenOff);
    const dictLen = h.readUInt16LE(textLenOff + 2);
    if (len < hdr + textLen + dictLen || idx + len > size || len % 4 !== 0) {
      badLength++;
      break;
    }
    const flagsLevel = h.readUInt8(textLenOff + 5);
    const record: PrintkRecord = {
      seq: seq++,
      tsNsec: h.readBigUInt64LE(tsOff),
      level: flagsLevel >> 5,
      facility: h.readUInt8(textLenOff + 4),
      flags: flagsLevel & 0x1f,
      text: decodeText(await mem.read(buf + BigInt(idx + hdr), textLen)),
    };
    if (callerOff !== undefined && callerOff + 4 <= hdr) {
      const caller = callerName(h.readUInt32LE(callerOff));
      if (caller) record.caller = caller;
    }
    if (dictLen > 0) addDict(record, (await mem.read(buf + BigInt(idx + hdr + textLen), dictLen)).toString('latin1'));
    records.push(record);
    idx += len;
  }
  return {
    layout: 'log_buf',
    records,
    skipped: badLength ? { 'bad-length': badLength } : {},
    skippedTotal: badLength,
    ring: { textAddress: buf, textBytes: size },
    ...(records[0] ? { firstSeq: records[0].seq } : {}),
  };
}

/** The old dictionary: NUL-separated KEY=VALUE pairs; SUBSYSTEM and DEVICE are what dev_printk() adds. */
function addDict(record: PrintkRecord, dict: string): void {
  for (const pair of dict.split('\0')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq);
    const value = decodeText(Buffer.from(pair.slice(eq + 1), 'latin1'));
    if (key === 'SUBSYSTEM') record.subsystem = value;
    else if (key === 'DEVICE') record.device = value;
  }
}
