/**
 * Layout and bytes of an ELF64 little-endian core file of guest-physical memory, the kind QEMU's
 * `dump-guest-memory` writes, but laid out so every classic tool opens it unmodified:
 *   - the program headers directly after the 64-byte ELF header (e_phoff = 64): makedumpfile reads
 *     program header i at 64 + 56*i whatever e_phoff says, so QEMU 7.2's layout (phdrs at 192 after
 *     a section header table) makes it fail with "Can't get the number of PT_LOAD";
 *   - one PT_NOTE right after the program headers;
 *   - one PT_LOAD per memory range at its physical address, each at a page-aligned file offset, so
 *     the data of a range can be written with positional writes and zero pages left as file holes;
 *   - optional alias PT_LOADs that map a virtual window onto the file bytes of an existing load
 *     (the kernel-text mapping /proc/vmcore has and drgn needs): no bytes are duplicated.
 * This module only computes the layout and encodes headers; the caller streams the data.
 */
import { VmpmError } from '../../util/errors';
import { ET_CORE, PT_LOAD, PT_NOTE } from './constants';

const ELF_HEADER_SIZE = 64;
const PHDR_SIZE = 56;
const PF_RWX = 7;
/** e_phnum is a u16 and 0xffff means "look in section header 0": vmpm never writes that many. */
const MAX_PHDRS = 0xfffe;
const PAGE = 4096;

export interface ElfLoadInput {
  /** Guest-physical address of the range. */
  paddr: bigint;
  /** Virtual address recorded for it; QEMU (paging off) and vmpm write paddr. */
  vaddr: bigint;
  /** Bytes in the range. */
  size: bigint;
}

/** A virtual mapping of part of load `load` (bytes [offsetInLoad, offsetInLoad + size) of it). */
export interface ElfAliasInput {
  load: number;
  offsetInLoad: bigint;
  size: bigint;
  vaddr: bigint;
}

export interface ElfCoreInput {
  machine: number;
  /** The PT_NOTE segment, already encoded (see notes-writer.ts). */
  notes: Buffer;
  loads: ElfLoadInput[];
  aliases?: ElfAliasInput[];
}

export interface ElfCoreLayout {
  /** ELF header + program headers + notes: the first `head.length` bytes of the file. */
  head: Buffer;
  /** File offset of each load's first byte (page-aligned). */
  loadOffsets: bigint[];
  /** Total file size (the last load's end); everything past `head` not written is zero. */
  fileSize: bigint;
}

const alignUp = (n: bigint, a: bigint): bigint => ((n + a - 1n) / a) * a;

/** Computes the file layout and encodes the head (ELF header, program headers, PT_NOTE bytes). */
export function layoutElfCore(input: ElfCoreInput): ElfCoreLayout {
  const aliases = input.aliases ?? [];
  const phnum = 1 + input.loads.length + aliases.length;
  if (phnum > MAX_PHDRS) throw new VmpmError(`ELF export: ${phnum} program headers is more than an ELF header can count (${MAX_PHDRS})`);
  const notesOffset = ELF_HEADER_SIZE + PHDR_SIZE * phnum;
  const headSize = notesOffset + input.notes.length;
  let next = alignUp(BigInt(headSize), BigInt(PAGE));
  const loadOffsets: bigint[] = [];
  for (const load of input.loads) {
    loadOffsets.push(next);
    next = alignUp(next + load.size, BigInt(PAGE));
  }
  const last = input.loads.length - 1;
  const fileSize = last >= 0 ? loadOffsets[last]! + input.loads[last]!.size : BigInt(headSize);

  const head = Buffer.alloc(headSize);
  encodeElfHeader(head, input.machine, phnum);
  let ph = ELF_HEADER_SIZE;
  encodePhdr(head, ph, { type: PT_NOTE, flags: 0, offset: BigInt(notesOffset), vaddr: 0n, paddr: 0n, size: BigInt(input.notes.length) });
  ph += PHDR_SIZE;
  input.loads.forEach((load, i) => {
    encodePhdr(head, ph, { type: PT_LOAD, flags: PF_RWX, offset: loadOffsets[i]!, vaddr: load.vaddr, paddr: load.paddr, size: load.size });
    ph += PHDR_SIZE;
  });
  for (const alias of aliases) {
    const load = input.loads[alias.load];
    if (!load || alias.offsetInLoad < 0n || alias.offsetInLoad + alias.size > load.size) {
      throw new VmpmError(`ELF export: alias mapping at ${alias.vaddr.toString(16)} lies outside its PT_LOAD`);
    }
    encodePhdr(head, ph, {
      type: PT_LOAD,
      flags: PF_RWX,
      offset: loadOffsets[alias.load]! + alias.offsetInLoad,
      vaddr: alias.vaddr,
      paddr: load.paddr + alias.offsetInLoad,
      size: alias.size,
    });
    ph += PHDR_SIZE;
  }
  input.notes.copy(head, notesOffset);
  return { head, loadOffsets, fileSize };
}

function encodeElfHeader(b: Buffer, machine: number, phnum: number): void {
  b.writeUInt32BE(0x7f454c46, 0); // \x7fELF
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // ELFDATA2LSB
  b[6] = 1; // EV_CURRENT
  b.writeUInt16LE(ET_CORE, 16);
  b.writeUInt16LE(machine, 18);
  b.writeUInt32LE(1, 20); // e_version
  b.writeBigUInt64LE(0n, 24); // e_entry
  b.writeBigUInt64LE(BigInt(ELF_HEADER_SIZE), 32); // e_phoff
  b.writeBigUInt64LE(0n, 40); // e_shoff: no section headers
  b.writeUInt32LE(0, 48); // e_flags
  b.writeUInt16LE(ELF_HEADER_SIZE, 52);
  b.writeUInt16LE(PHDR_SIZE, 54);
  b.writeUInt16LE(phnum, 56);
  b.writeUInt16LE(0, 58); // e_shentsize
  b.writeUInt16LE(0, 60); // e_shnum
  b.writeUInt16LE(0, 62); // e_shstrndx
}

interface Phdr {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  size: bigint;
}

function encodePhdr(b: Buffer, at: number, p: Phdr): void {
  b.writeUInt32LE(p.type, at);
  b.writeUInt32LE(p.flags, at + 4);
  b.writeBigUInt64LE(p.offset, at + 8);
  b.writeBigUInt64LE(p.vaddr, at + 16);
  b.writeBigUInt64LE(p.paddr, at + 24);
  b.writeBigUInt64LE(p.size, at + 32); // p_filesz
  b.writeBigUInt64LE(p.size, at + 40); // p_memsz
  // p_align 0, as QEMU and /proc/vmcore write it: crash 8.0.2 segfaults on a core whose PT_LOADs say 4096.
  b.writeBigUInt64LE(0n, at + 48);
}
