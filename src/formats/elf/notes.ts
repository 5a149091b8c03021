/**
 * Splitting a PT_NOTE segment into notes (System V gABI note layout: namesz, descsz, type, name and
 * desc each padded to 4 bytes). Every length read from the buffer is checked before use.
 */
import { ByteReader } from '../byte-reader';

const FORMAT = 'ELF notes';

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
  /** Byte offset of the note header within the buffer given to parseElfNotes. */
  offset: number;
}

const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);

/**
 * Splits a PT_NOTE segment into notes. Throws FormatError when a header or a name/desc length points
 * past the end of the buffer; trailing zero padding is accepted. `desc` is a view, not a copy.
 */
export function parseElfNotes(buf: Buffer, littleEndian: boolean, file?: string): ElfNote[] {
  const r = new ByteReader(buf, { format: FORMAT, littleEndian, file });
  const notes: ElfNote[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const remaining = buf.length - pos;
    if (remaining < 12) {
      if (buf.subarray(pos).every((b) => b === 0)) break;
      throw r.error(`truncated note header at offset 0x${pos.toString(16)} (${remaining} bytes left, need 12)`, pos, 'note header');
    }
    const namesz = r.u32(pos, 'namesz');
    const descsz = r.u32(pos + 4, 'descsz');
    const type = r.u32(pos + 8, 'type');
    const nameStart = pos + 12;
    const pastEnd = (field: string, value: number): Error =>
      r.error(`note #${notes.length} at offset 0x${pos.toString(16)} has ${field} ${value}, past the end of the ${buf.length}-byte segment`, pos, field);
    if (!r.has(nameStart, namesz)) throw pastEnd('namesz', namesz);
    const descStart = nameStart + align4(namesz);
    if (!r.has(descStart, descsz)) throw pastEnd('descsz', descsz);
    const name = r.bytes(nameStart, namesz, 'name').toString('latin1').replace(/\0+$/, '');
    notes.push({ name, type, desc: r.bytes(descStart, descsz, 'desc'), offset: pos });
    // The last note's desc padding may be missing; the loop ends either way.
    pos = descStart + align4(descsz);
  }
  return notes;
}

/** The guest's VMCOREINFO text ("OSRELEASE=...\nPAGESIZE=...\n..."), if one of the notes carries it. */
export function vmcoreinfoFromNotes(notes: readonly Pick<ElfNote, 'name' | 'desc'>[]): string | undefined {
  const note = notes.find((n) => n.name === 'VMCOREINFO');
  return note === undefined ? undefined : note.desc.toString('utf8').replace(/\0+$/, '');
}
