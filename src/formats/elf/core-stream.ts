/**
 * Reads an ELF core file as a stream (what QEMU's `dump-guest-memory` with paging:false writes): the
 * ELF header, the program headers, then every PT_NOTE and PT_LOAD segment in file order. Nothing is
 * seeked, so the input can be a FIFO. QEMU 7.2 writes ELFCLASS64 even for a 32-bit x86 guest (its
 * pc.bios block ends at 4 GiB) with e_machine EM_386; ELFCLASS32 is handled too.
 */
import { ByteSource } from '../byte-source';
import { FormatError } from '../errors';
import { EHDR_SIZE, PHDR_SIZE, PN_XNUM, PT_LOAD, PT_NOTE } from './constants';
import { elfHeaderSize, parseElfHeader, parseProgramHeaders, type ElfHeaderInfo, type ElfSegment } from './header';

const FORMAT = 'ELF dump';
/** Far above anything QEMU writes (a few KiB per vCPU); guards against absurd allocations on bad input. */
const MAX_NOTES_BYTES = 64 * 1024 * 1024;
const MAX_PHDRS = 65534;

export interface ElfStreamHandlers {
  /** Called once the headers are known, before any segment data (e.g. to size a progress bar). */
  onHeaders?(header: ElfHeaderInfo, segments: ElfSegment[]): void | Promise<void>;
  onNote(segment: ElfSegment, data: Buffer): void | Promise<void>;
  /** Must consume `data` completely. */
  onLoad(segment: ElfSegment, data: AsyncIterable<Buffer>): Promise<void>;
}

export interface ElfStreamOptions {
  /** Names the stream in a truncation error ("dump-guest-memory ELF stream"). */
  streamName?: string;
  /** Appended to a truncation error: the likely cause, which the caller knows. */
  truncationHint?: string;
}

function invalid(problem: string, offset: number, field: string): FormatError {
  return new FormatError({ format: FORMAT, problem, offset, field });
}

/** Walks an ELF core stream from start to end of file, handing each segment to `handlers`. */
export async function readElfCoreStream(
  source: AsyncIterable<Buffer>,
  handlers: ElfStreamHandlers,
  options: ElfStreamOptions = {},
): Promise<ElfHeaderInfo> {
  const input = new ByteSource(source, options.streamName ?? 'ELF stream', options.truncationHint);
  const ident = await input.read(EHDR_SIZE[32]);
  const needed = elfHeaderSize(ident);
  const headerBuf = needed > ident.length ? Buffer.concat([ident, await input.read(needed - ident.length)]) : ident;
  const header = parseElfHeader(headerBuf);
  if (header.phnum === PN_XNUM) throw invalid('more than 65534 memory blocks (PN_XNUM) is not supported', 0, 'e_phnum');
  if (header.phnum > MAX_PHDRS || header.phentsize < PHDR_SIZE[header.class]) {
    throw invalid(`implausible program header table (${header.phnum} x ${header.phentsize} bytes)`, 0, 'e_phentsize');
  }
  if (header.phoff < input.position) throw invalid(`program headers at ${header.phoff} overlap the ELF header`, 0, 'e_phoff');
  await input.skip(header.phoff - input.position);
  const segments = parseProgramHeaders(await input.read(header.phnum * header.phentsize), header);
  await handlers.onHeaders?.(header, segments);

  const wanted = segments.filter((s) => (s.type === PT_LOAD || s.type === PT_NOTE) && s.filesz > 0);
  wanted.sort((a, b) => a.offset - b.offset);
  for (const seg of wanted) {
    if (seg.offset < input.position) {
      throw invalid(`segment at file offset ${seg.offset} overlaps the previous one (at ${input.position})`, seg.offset, 'p_offset');
    }
    await input.skip(seg.offset - input.position);
    if (seg.type === PT_NOTE) {
      if (seg.filesz > MAX_NOTES_BYTES) throw invalid(`PT_NOTE of ${seg.filesz} bytes is implausibly large`, seg.offset, 'p_filesz');
      await handlers.onNote(seg, await input.read(seg.filesz));
    } else {
      await handlers.onLoad(seg, input.take(seg.filesz));
    }
  }
  // A pipe's writer (QEMU) closes it when done; reading to the end keeps it from blocking on a full pipe.
  await input.drain();
  return header;
}
