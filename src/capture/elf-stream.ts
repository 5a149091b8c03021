/**
 * Reads the ELF core file `dump-guest-memory` (paging:false) writes, as a stream: the ELF header, the
 * program headers, then every PT_NOTE and PT_LOAD segment in file order. Nothing is seeked, so the
 * input can be a FIFO. QEMU 7.2 writes ELFCLASS64 even for a 32-bit x86 guest (its pc.bios block ends
 * at 4 GiB) with e_machine EM_386; ELFCLASS32 is handled too.
 */
import { VmpmError } from '../util/errors';
import { ByteSource } from './byte-source';

export const PT_LOAD = 1;
export const PT_NOTE = 4;
/** e_phnum value meaning "the real count is in section header 0" (more than 65534 segments). */
const PN_XNUM = 0xffff;
/** Far above anything QEMU writes (a few KiB per vCPU); guards against absurd allocations on bad input. */
const MAX_NOTES_BYTES = 64 * 1024 * 1024;
const MAX_PHDRS = 65534;

export interface ElfHeaderInfo {
  class: 32 | 64;
  littleEndian: boolean;
  machine: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  ehsize: number;
}

export interface ElfSegment {
  type: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: number;
  memsz: bigint;
}

function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new VmpmError(`ELF dump: ${what} ${value} is too large`);
  return Number(value);
}

export function parseElfHeader(buf: Buffer): ElfHeaderInfo {
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) {
    throw new VmpmError('dump-guest-memory output is not an ELF file (bad magic)');
  }
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) throw new VmpmError(`ELF dump: unknown EI_CLASS ${cls}`);
  if (data !== 1 && data !== 2) throw new VmpmError(`ELF dump: unknown EI_DATA ${data}`);
  const le = data === 1;
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number): bigint => (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  if (cls === 2) {
    if (buf.length < 64) throw new VmpmError('ELF dump: truncated ELF64 header');
    return {
      class: 64, littleEndian: le, machine: u16(18),
      phoff: toSafeNumber(u64(32), 'e_phoff'), ehsize: u16(52), phentsize: u16(54), phnum: u16(56),
    };
  }
  return { class: 32, littleEndian: le, machine: u16(18), phoff: u32(28), ehsize: u16(40), phentsize: u16(42), phnum: u16(44) };
}

export function parseProgramHeaders(buf: Buffer, header: ElfHeaderInfo): ElfSegment[] {
  const le = header.littleEndian;
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const u64 = (o: number): bigint => (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o));
  const out: ElfSegment[] = [];
  for (let i = 0; i < header.phnum; i++) {
    const o = i * header.phentsize;
    if (header.class === 64) {
      out.push({
        type: u32(o), offset: toSafeNumber(u64(o + 8), 'p_offset'), vaddr: u64(o + 16), paddr: u64(o + 24),
        filesz: toSafeNumber(u64(o + 32), 'p_filesz'), memsz: u64(o + 40),
      });
    } else {
      out.push({
        type: u32(o), offset: u32(o + 4), vaddr: BigInt(u32(o + 8)), paddr: BigInt(u32(o + 12)),
        filesz: u32(o + 16), memsz: BigInt(u32(o + 20)),
      });
    }
  }
  return out;
}

export interface ElfStreamHandlers {
  /** Called once the headers are known, before any segment data (e.g. to size a progress bar). */
  onHeaders?(header: ElfHeaderInfo, segments: ElfSegment[]): void | Promise<void>;
  onNote(segment: ElfSegment, data: Buffer): void | Promise<void>;
  /** Must consume `data` completely. */
  onLoad(segment: ElfSegment, data: AsyncIterable<Buffer>): Promise<void>;
}

/** Walks an ELF core stream from start to end of file, handing each segment to `handlers`. */
export async function readElfCoreStream(source: AsyncIterable<Buffer>, handlers: ElfStreamHandlers): Promise<ElfHeaderInfo> {
  const input = new ByteSource(source, 'dump-guest-memory ELF stream');
  const ident = await input.read(52);
  const needed = ident[4] === 2 ? 64 : 52;
  const headerBuf = needed > 52 ? Buffer.concat([ident, await input.read(needed - 52)]) : ident;
  const header = parseElfHeader(headerBuf);
  if (header.phnum === PN_XNUM) throw new VmpmError('ELF dump: more than 65534 memory blocks (PN_XNUM) is not supported');
  const minEntry = header.class === 64 ? 56 : 32;
  if (header.phnum > MAX_PHDRS || header.phentsize < minEntry) {
    throw new VmpmError(`ELF dump: implausible program header table (${header.phnum} x ${header.phentsize} bytes)`);
  }
  if (header.phoff < input.position) throw new VmpmError(`ELF dump: program headers at ${header.phoff} overlap the ELF header`);
  await input.skip(header.phoff - input.position);
  const segments = parseProgramHeaders(await input.read(header.phnum * header.phentsize), header);
  await handlers.onHeaders?.(header, segments);

  const wanted = segments.filter((s) => (s.type === PT_LOAD || s.type === PT_NOTE) && s.filesz > 0);
  wanted.sort((a, b) => a.offset - b.offset);
  for (const seg of wanted) {
    if (seg.offset < input.position) {
      throw new VmpmError(`ELF dump: segment at file offset ${seg.offset} overlaps the previous one (at ${input.position})`);
    }
    await input.skip(seg.offset - input.position);
    if (seg.type === PT_NOTE) {
      if (seg.filesz > MAX_NOTES_BYTES) throw new VmpmError(`ELF dump: PT_NOTE of ${seg.filesz} bytes is implausibly large`);
      await handlers.onNote(seg, await input.read(seg.filesz));
    } else {
      await handlers.onLoad(seg, input.take(seg.filesz));
    }
  }
  // QEMU closes the pipe when done; reading to the end keeps it from blocking on a full pipe.
  await input.drain();
  return header;
}
