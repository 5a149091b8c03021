/**
 * The ELF file header and program header table, ELFCLASS32 and ELFCLASS64, either byte order. Parsed
 * through the bounds-checked ByteReader: a short buffer is a FormatError, not a RangeError.
 */
import { ByteReader } from '../byte-reader';
import { FormatError } from '../errors';
import { EHDR_SIZE, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ELF_MAGIC } from './constants';

const FORMAT = 'ELF dump';

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

/** The bytes parseElfHeader needs for the class in e_ident (52 until the class byte is known). */
export function elfHeaderSize(ident: Buffer): number {
  return ident[4] === ELFCLASS64 ? EHDR_SIZE[64] : EHDR_SIZE[32];
}

export function parseElfHeader(buf: Buffer, file?: string): ElfHeaderInfo {
  if (buf.length < EHDR_SIZE[32] || buf.readUInt32BE(0) !== ELF_MAGIC) {
    throw new FormatError({ format: FORMAT, file, offset: 0, field: 'e_ident', problem: 'not an ELF file (bad magic)' });
  }
  const cls = buf[4];
  const data = buf[5];
  if (cls !== ELFCLASS32 && cls !== ELFCLASS64) {
    throw new FormatError({ format: FORMAT, file, offset: 4, field: 'EI_CLASS', problem: `unknown EI_CLASS ${cls}` });
  }
  if (data !== ELFDATA2LSB && data !== ELFDATA2MSB) {
    throw new FormatError({ format: FORMAT, file, offset: 5, field: 'EI_DATA', problem: `unknown EI_DATA ${data}` });
  }
  const r = reader(buf, data === ELFDATA2LSB, file);
  if (cls === ELFCLASS64) {
    if (buf.length < EHDR_SIZE[64]) throw r.error('truncated ELF64 header', 0, 'ELF header');
    return {
      class: 64, littleEndian: r.littleEndian, machine: r.u16(18, 'e_machine'),
      phoff: r.u64Number(32, 'e_phoff'), ehsize: r.u16(52, 'e_ehsize'), phentsize: r.u16(54, 'e_phentsize'), phnum: r.u16(56, 'e_phnum'),
    };
  }
  return {
    class: 32, littleEndian: r.littleEndian, machine: r.u16(18, 'e_machine'),
    phoff: r.u32(28, 'e_phoff'), ehsize: r.u16(40, 'e_ehsize'), phentsize: r.u16(42, 'e_phentsize'), phnum: r.u16(44, 'e_phnum'),
  };
}

/** The program header table (`header.phnum` entries of `header.phentsize` bytes at the start of `buf`). */
export function parseProgramHeaders(buf: Buffer, header: ElfHeaderInfo, file?: string, base = header.phoff): ElfSegment[] {
  const table = reader(buf, header.littleEndian, file, base);
  const out: ElfSegment[] = [];
  for (let i = 0; i < header.phnum; i++) {
    const o = i * header.phentsize;
    if (header.class === 64) {
      out.push({
        type: table.u32(o, 'p_type'), offset: table.u64Number(o + 8, 'p_offset'), vaddr: table.u64(o + 16, 'p_vaddr'),
        paddr: table.u64(o + 24, 'p_paddr'), filesz: table.u64Number(o + 32, 'p_filesz'), memsz: table.u64(o + 40, 'p_memsz'),
      });
    } else {
      out.push({
        type: table.u32(o, 'p_type'), offset: table.u32(o + 4, 'p_offset'), vaddr: BigInt(table.u32(o + 8, 'p_vaddr')),
        paddr: BigInt(table.u32(o + 12, 'p_paddr')), filesz: table.u32(o + 16, 'p_filesz'), memsz: BigInt(table.u32(o + 20, 'p_memsz')),
      });
    }
  }
  return out;
}

function reader(buf: Buffer, littleEndian: boolean, file: string | undefined, base = 0): ByteReader {
  return new ByteReader(buf, { format: FORMAT, littleEndian, base, file });
}
