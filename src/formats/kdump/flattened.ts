/**
 * makedumpfile's flattened format (makedumpfile -F; what QEMU 7.2 always writes for kdump-*): a
 * 4096-byte header {char signature[16] = "makedumpfile", i64 type = 1, i64 version = 1} (big-endian),
 * then records {i64 offset, i64 size (big-endian), size bytes of data} until offset = size = -1.
 * Reassembling it means writing each record's data at its offset (later records win).
 *
 * Bounded on hostile input: each record's size must fit in what is left of the file, offsets must be
 * non-negative and below `maxOffset`, so the work is linear in the file size and the bytes written
 * never exceed the bytes read, however often a stream seeks backwards.
 */
import { VmpmError } from '../../util/errors';
import type { FileWindow } from '../file-window';

export const FLAT_HEADER_SIZE = 4096;
const FLAT_SIGNATURE = 'makedumpfile';
const RECORD_HEADER = 16;
const CHUNK = 4 * 1024 * 1024;

/** True when the first bytes are a flattened-format header. */
export function isFlattened(head: Buffer): boolean {
  return head.length >= 32 && head.toString('latin1', 0, 12) === FLAT_SIGNATURE && head[12] === 0;
}

export interface FlattenedStats {
  records: number;
  dataBytes: number;
  /** One past the highest byte any record wrote: the reassembled file's size. */
  end: bigint;
}

export async function reassembleFlattened(
  input: FileWindow,
  write: (offset: number, data: Buffer) => Promise<void> | void,
  options: { maxOffset: bigint },
): Promise<FlattenedStats> {
  const head = await input.read(0, FLAT_HEADER_SIZE, 'flattened header');
  if (!isFlattened(head)) throw new VmpmError('flattened kdump: no "makedumpfile" signature');
  const type = head.readBigInt64BE(16);
  const version = head.readBigInt64BE(24);
  if (type !== 1n) throw new VmpmError(`flattened kdump: header type ${type}, only type 1 is defined`);
  if (version !== 1n) throw new VmpmError(`flattened kdump: header version ${version}, only version 1 is defined`);
  let pos = FLAT_HEADER_SIZE;
  const stats: FlattenedStats = { records: 0, dataBytes: 0, end: 0n };
  for (;;) {
    if (pos + RECORD_HEADER > input.size) {
      throw new VmpmError(`flattened kdump: stream ends at byte ${input.size} without its end marker (truncated after ${stats.records} records)`);
    }
    const rh = await input.read(pos, RECORD_HEADER, `record ${stats.records} header`);
    const offset = rh.readBigInt64BE(0);
    const size = rh.readBigInt64BE(8);
    pos += RECORD_HEADER;
    if (offset === -1n && size === -1n) break;
    const where = `flattened kdump: record ${stats.records} at byte ${pos - RECORD_HEADER}`;
    if (offset < 0n || size < 0n) throw new VmpmError(`${where} has offset ${offset} and size ${size}`);
    if (size > BigInt(input.size - pos)) throw new VmpmError(`${where} claims ${size} bytes of data, past the end of the ${input.size}-byte file`);
    if (offset + size > options.maxOffset) throw new VmpmError(`${where} writes at offset ${offset}, beyond any plausible dump (limit ${options.maxOffset})`);
    let done = 0;
    const n = Number(size);
    while (done < n) {
      const take = Math.min(CHUNK, n - done);
      await write(Number(offset) + done, await input.read(pos + done, take, `${where} data`));
      done += take;
    }
    pos += n;
    stats.records++;
    stats.dataBytes += n;
    if (offset + size > stats.end) stats.end = offset + size;
  }
  return stats;
}
