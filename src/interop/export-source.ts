/**
 * Everything an export takes from a bundle, gathered once: the memory ranges in address order, the
 * vCPUs' registers, the architecture (and so e_machine and note layout), and the VMCOREINFO note
 * exactly as the bundle holds it (from the dump's own notes when the capture kept them).
 */
import { type BundleReader, type CpusSection, type Manifest, SECTION } from '../bundle';
import { EM_386, EM_AARCH64, EM_X86_64, parseElfNotes } from '../formats/elf';
import type { Vmcoreinfo } from '../guestos/linux/vmcoreinfo';
import { encodeNote } from '../formats/elf/notes-writer';
import type { NoteLayout } from '../formats/elf/notes-writer';
import { describeError, VmpmError } from '../util/errors';
import type { Hex } from '../util/hex';
import { parseVmcoreinfo } from './linux';


export interface ExportRange {
  start: bigint;
  length: bigint;
  pages: number;
  zeroPages: number;
}

export interface ExportSource {
  reader: BundleReader;
  manifest: Manifest | undefined;
  ranges: ExportRange[];
  cpus: Array<{ index: number; registers: Record<string, Hex> }>;
  arch: string;
  machine: number;
  layout: NoteLayout;
  /** The VMCOREINFO note (header, name, desc, padding) as it goes into the PT_NOTE, if any. */
  vmcoreinfoNote?: Buffer;
  vmcoreinfo?: Vmcoreinfo;
  warnings: string[];
}

export async function exportSource(reader: BundleReader): Promise<ExportSource> {
  const warnings: string[] = [];
  const manifest = reader.has(SECTION.manifest) ? await reader.json<Manifest>(SECTION.manifest) : undefined;
  const cpusSection = reader.has(SECTION.cpus) ? await reader.json<CpusSection>(SECTION.cpus) : undefined;
  // Sections come from any writer (synthetic bundles have a manifest without vm): read them defensively.
  const arch = (manifest as Partial<Manifest> | undefined)?.vm?.arch ?? cpusSection?.arch ?? 'x86_64';
  const cpus = [...(cpusSection?.cpus ?? [])].sort((a, b) => a.index - b.index);
  let machine: number;
  let layout: NoteLayout;
  if (arch === 'aarch64') {
    machine = EM_AARCH64;
    layout = 'aarch64';
  } else if (arch === 'x86_64' || arch === 'i386') {
    // QEMU decides from the first vCPU: long mode -> EM_X86_64, else EM_386 (still ELFCLASS64).
    const long = cpus.length === 0 || cpus[0]!.mode === 'long';
    machine = long ? EM_X86_64 : EM_386;
    layout = long ? 'x86_64' : 'i386';
  } else {
    throw new VmpmError(`export: architecture ${arch} is not supported (x86_64 and aarch64 are)`);
  }
  if (cpus.length === 0) warnings.push('the bundle has no vCPU registers: the dump has no NT_PRSTATUS notes');

  const ranges = reader
    .ranges()
    .filter((r) => r.pages > 0)
    .sort((a, b) => (a.start < b.start ? -1 : 1))
    .map((r) => ({ start: r.start, length: r.length, pages: r.pages, zeroPages: r.zeroPages }));

  const source: ExportSource = { reader, manifest, ranges, cpus, arch, machine, layout, warnings };
  const desc = await vmcoreinfoDesc(reader, warnings);
  if (desc) {
    source.vmcoreinfoNote = encodeNote('VMCOREINFO', 0, desc);
    const info = parseVmcoreinfo(desc, warnings);
    if (info) source.vmcoreinfo = info;
  }
  return source;
}

/** The VMCOREINFO note's desc: from the dump's notes verbatim when kept, else the vmcoreinfo section. */
async function vmcoreinfoDesc(reader: BundleReader, warnings: string[]): Promise<Buffer | undefined> {
  if (reader.has(SECTION.elfNotes)) {
    try {
      const note = parseElfNotes(await reader.raw(SECTION.elfNotes), true).find((n) => n.name === 'VMCOREINFO');
      if (note) return Buffer.from(note.desc);
    } catch (err) {
      warnings.push(`the bundle's elf-notes section does not parse (${describeError(err)}); VMCOREINFO taken from its vmcoreinfo section`);
    }
  }
  return reader.has(SECTION.vmcoreinfo) ? reader.raw(SECTION.vmcoreinfo) : undefined;
}
