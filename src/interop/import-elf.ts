/**
 * Memory and notes of an ELF core dump (QEMU's or libvirt's `dump-guest-memory`, 7.2's layout with
 * section headers at 64 and program headers at 192, the older one with program headers at 64, or
 * vmpm's own export) into a bundle writer.
 *
 * Validation first, from the headers alone: every segment must lie inside the file, the notes are
 * bounded, and PT_LOADs may overlap physically only as aliases (a virtual mapping such as the
 * kernel-text PT_LOAD of /proc/vmcore and vmpm's export, which is skipped: its bytes are already in
 * the physical load). Then one sequential pass over the file feeds each load's bytes to the bundle at
 * its physical address. Bytes between p_filesz and p_memsz are not in the file: they stay holes.
 */
import type { BundleWriter } from '../bundle';
import { parseElfHeader, parseProgramHeaders, PT_LOAD, PT_NOTE, type ElfSegment } from '../formats/elf';
import type { FileWindow } from '../formats/file-window';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';

const MAX_PHDRS = 65534;
const MAX_NOTES_BYTES = 16 * 1024 * 1024;
const MAX_NOTES = 65536;
const CHUNK = 4 * 1024 * 1024;

export interface ElfImport {
  machine: number;
  littleEndian: boolean;
  notes: Buffer;
  loads: Array<{ paddr: bigint; size: bigint }>;
  skipped: string[];
  /** Bytes PT_LOADs declare in memory but do not carry in the file (filtered out). */
  notInFile: bigint;
}

export async function importElf(file: FileWindow, writer: BundleWriter, onProgress?: (done: number, total: number) => void): Promise<ElfImport> {
  const ident = await file.read(0, Math.min(file.size, 64), 'ELF header');
  const header = parseElfHeader(Buffer.from(ident));
  if (header.phnum === 0xffff) throw new VmpmError('ELF: more than 65534 program headers (PN_XNUM) is not supported');
  const minEntry = header.class === 64 ? 56 : 32;
  if (header.phnum === 0 || header.phnum > MAX_PHDRS || header.phentsize < minEntry || header.phentsize > 4096) {
    throw new VmpmError(`ELF: implausible program header table (${header.phnum} entries of ${header.phentsize} bytes)`);
  }
  const segments = parseProgramHeaders(Buffer.from(await file.read(header.phoff, header.phnum * header.phentsize, 'program headers')), header);
  segments.forEach((s, i) => {
    if ((s.type === PT_LOAD || s.type === PT_NOTE) && BigInt(s.offset) + BigInt(s.filesz) > BigInt(file.size)) {
      throw new VmpmError(`ELF: ${s.type === PT_LOAD ? 'PT_LOAD' : 'PT_NOTE'} #${i} (file offset ${s.offset}, ${s.filesz} bytes) extends past the end of the ${file.size}-byte file (truncated dump?)`);
    }
  });
  const notes = await readNotes(file, segments, header.littleEndian);
  const { kept, skipped } = choosePhysicalLoads(segments);
  let notInFile = 0n;
  for (const s of kept) if (s.memsz > BigInt(s.filesz)) notInFile += s.memsz - BigInt(s.filesz);
  await copyLoads(file, writer, kept, onProgress);
  return {
    machine: header.machine,
    littleEndian: header.littleEndian,
    notes,
    loads: kept.map((s) => ({ paddr: s.paddr, size: BigInt(s.filesz) })),
    skipped,
    notInFile,
  };
}

async function readNotes(file: FileWindow, segments: ElfSegment[], littleEndian: boolean): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  for (const s of segments) {
    if (s.type !== PT_NOTE || s.filesz === 0) continue;
    total += s.filesz;
    if (total > MAX_NOTES_BYTES) throw new VmpmError(`ELF: ${total} bytes of PT_NOTE is implausibly large (limit ${MAX_NOTES_BYTES})`);
    parts.push(Buffer.from(await file.read(s.offset, s.filesz, 'PT_NOTE')));
  }
  const notes = Buffer.concat(parts);
  // Count before anyone parses them: a segment of 12-byte empty notes must not become millions of objects.
  let count = 0;
  for (let pos = 0; pos + 12 <= notes.length; count++) {
    if (count >= MAX_NOTES) throw new VmpmError(`ELF: more than ${MAX_NOTES} notes in PT_NOTE; not a dump of a guest`);
    const u32 = (at: number): number => (littleEndian ? notes.readUInt32LE(at) : notes.readUInt32BE(at));
    const namesz = u32(pos);
    const descsz = u32(pos + 4);
    pos += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
  }
  return notes;
}

/**
 * The loads that hold physical memory, sorted by file offset, with aliases dropped. Two loads may
 * share physical addresses only when one lies inside the other and either points at the same file
 * bytes or is a virtual mapping (p_vaddr != p_paddr); anything else is a contradiction.
 */
export function choosePhysicalLoads(segments: ElfSegment[]): { kept: ElfSegment[]; skipped: string[] } {
  const loads = segments
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => s.type === PT_LOAD && s.filesz > 0)
    // Physical (identity) loads first, so an alias always meets the load it aliases already kept.
    .sort((a, b) => Number(isAlias(a.s)) - Number(isAlias(b.s)) || (a.s.paddr < b.s.paddr ? -1 : a.s.paddr > b.s.paddr ? 1 : 0));
  const kept: Array<{ s: ElfSegment; i: number }> = [];
  const skipped: string[] = [];
  for (const cand of loads) {
    const { s, i } = cand;
    if (s.paddr % 4096n !== 0n) throw new VmpmError(`ELF: PT_LOAD #${i} starts at physical ${toHex(s.paddr)}, not on a 4 KiB page`);
    const end = s.paddr + BigInt(s.filesz);
    if (end > 1n << 64n) throw new VmpmError(`ELF: PT_LOAD #${i} runs past the 64-bit physical address space`);
    const other = kept.find((k) => k.s.paddr < end && s.paddr < k.s.paddr + BigInt(k.s.filesz));
    if (!other) {
      kept.push(cand);
      continue;
    }
    const inside = other.s.paddr <= s.paddr && end <= other.s.paddr + BigInt(other.s.filesz);
    const sameBytes = BigInt(s.offset) - BigInt(other.s.offset) === s.paddr - other.s.paddr;
    if (inside && (sameBytes || isAlias(s))) {
      skipped.push(`PT_LOAD #${i} (vaddr ${toHex(s.vaddr)}) maps physical ${toHex(s.paddr)}-${toHex(end - 1n)}, already in PT_LOAD #${other.i}: skipped as an alias`);
      continue;
    }
    throw new VmpmError(`ELF: PT_LOADs #${other.i} and #${i} overlap at physical ${toHex(s.paddr > other.s.paddr ? s.paddr : other.s.paddr)} (not an alias of the same bytes)`);
  }
  const byOffset = kept.map((k) => k.s).sort((a, b) => a.offset - b.offset);
  for (let j = 1; j < byOffset.length; j++) {
    const prev = byOffset[j - 1]!;
    if (byOffset[j]!.offset < prev.offset + prev.filesz) {
      throw new VmpmError(`ELF: PT_LOADs for physical ${toHex(prev.paddr)} and ${toHex(byOffset[j]!.paddr)} share file bytes at offset ${byOffset[j]!.offset}`);
    }
  }
  return { kept: byOffset, skipped };
}

/** A PT_LOAD whose virtual address is not its physical one (and not 0): a mapping, not RAM itself. */
function isAlias(s: ElfSegment): boolean {
  return s.vaddr !== s.paddr && s.vaddr !== 0n;
}

async function copyLoads(file: FileWindow, writer: BundleWriter, loads: ElfSegment[], onProgress?: (done: number, total: number) => void): Promise<void> {
  const total = loads.reduce((a, s) => a + s.filesz, 0);
  let done = 0;
  for (const s of loads) {
    const range = writer.beginMemoryRange(s.paddr);
    for (let off = 0; off < s.filesz; off += CHUNK) {
      const n = Math.min(CHUNK, s.filesz - off);
      // The writer copies what it keeps before write() resolves, so a view of the read window is enough.
      await range.write(await file.read(s.offset + off, n, `PT_LOAD at ${toHex(s.paddr)}`));
      done += n;
      onProgress?.(done, total);
    }
    await range.end(BigInt(s.filesz));
  }
}
