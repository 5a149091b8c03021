/**
 * `vmpm export --format elf`: an ELF64 core of the bundle's guest-physical memory (see
 * formats/elf/writer.ts for the layout). Data pages are written at their load's file offset; zero
 * pages and the alignment padding are never written (file holes), and uncaptured addresses have no
 * PT_LOAD at all, so nothing pretends to be memory that was not captured.
 */
import { encodeCpuNotes } from '../formats/elf/notes-writer';
import { type ElfAliasInput, layoutElfCore } from '../formats/elf/writer';
import { EM_X86_64 } from '../formats/elf';
import type { ExportSource } from './export-source';
import { kernelTextWindow } from './linux';
import { type OutputFile, SparseWriter, writeAll } from './output';
import { forEachDataPage, type FormatResult } from './pages';

export async function writeElf(src: ExportSource, out: OutputFile, onProgress?: (done: number, total: number) => void): Promise<FormatResult> {
  const notes = encodeCpuNotes(src.layout, src.cpus, src.vmcoreinfoNote ? [src.vmcoreinfoNote] : []);
  const loads = src.ranges.map((r) => ({ paddr: r.start, vaddr: r.start, size: r.length }));
  const aliases: ElfAliasInput[] = [];
  const details: Record<string, unknown> = { machine: src.machine, cpuNotes: src.cpus.length, vmcoreinfoNote: src.vmcoreinfoNote !== undefined };
  if (src.vmcoreinfo && src.machine === EM_X86_64) {
    const w = kernelTextWindow(src.vmcoreinfo, src.ranges, src.warnings);
    if (w) {
      const load = src.ranges.findIndex((r) => r.start <= w.paddr && w.paddr < r.start + r.length);
      aliases.push({ load, offsetInLoad: w.paddr - src.ranges[load]!.start, size: w.size, vaddr: w.vaddr });
      details.kernelText = { vaddr: `0x${w.vaddr.toString(16)}`, paddr: `0x${w.paddr.toString(16)}`, size: `0x${w.size.toString(16)}` };
    }
  }
  const layout = layoutElfCore({ machine: src.machine, notes, loads, aliases });
  await writeAll(out.fh, layout.head, 0);
  const sink = new SparseWriter(out.fh, out.target, { earlyWriteback: true });
  try {
    const stats = await forEachDataPage(src, (rangeIndex, addr, data) => sink.write(Number(layout.loadOffsets[rangeIndex]! + (addr - src.ranges[rangeIndex]!.start)), data), onProgress);
    await sink.finish();
    return { fileSize: layout.fileSize, ...stats, details };
  } finally {
    await sink.close();
  }
}
