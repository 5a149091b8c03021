/**
 * Where a migration stream's pages go: QEMU names each page by RAM block and offset inside it; the
 * bundle stores guest-physical addresses. The capture plan (from `info mtree -f`) says which part
 * of which block is mapped where (pc.ram's first 3 GiB at 0, the rest above 4 GiB, the PAM views of
 * 0xc0000-0xfffff ...), so each planned range becomes one placed range and a page lands in every
 * range that maps its block offset. Pages of blocks or offsets the plan does not map (pc.bios,
 * option ROMs, the VGA hole of pc.ram) are counted and dropped, as the other methods never read them.
 */
import type { PlacedRangesWriter } from '../bundle';
import { MIGRATION_PAGE_SIZE, type RamBlock } from '../formats/migration';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import type { CaptureRange } from './plan';

interface Target {
  /** Block offset (bytes) where the range starts, and its length. */
  blockOffset: number;
  length: number;
  range: number;
}

export class MigrationPlacement {
  private readonly byBlock = new Map<string, Target[]>();
  unmappedPages = 0;

  /** `plan` in the order of `placed.layout` (both ascending by address). */
  constructor(
    plan: CaptureRange[],
    private readonly placed: PlacedRangesWriter,
  ) {
    placed.layout.forEach((slot, range) => {
      const r = plan.find((p) => p.start === slot.start);
      if (!r || r.blockOffset === undefined) throw new VmpmError(`capture range ${toHex(slot.start)} has no RAM block offset`);
      const list = this.byBlock.get(r.name) ?? [];
      list.push({ blockOffset: Number(r.blockOffset), length: Number(r.end - r.start), range });
      this.byBlock.set(r.name, list);
    });
  }

  /** Refuses a stream whose block list cannot hold every planned range (they would never arrive). */
  checkBlocks(blocks: RamBlock[]): void {
    for (const [name, targets] of this.byBlock) {
      const block = blocks.find((b) => b.id === name);
      if (!block) throw new VmpmError(`the migration stream has no RAM block "${name}", which the memory map maps as RAM`);
      for (const t of targets) {
        if (t.blockOffset + t.length > block.length) {
          throw new VmpmError(`RAM block "${name}" is 0x${block.length.toString(16)} bytes in the migration stream; the memory map uses it up to 0x${(t.blockOffset + t.length).toString(16)}`);
        }
      }
    }
  }

  /** Places one page (4096 bytes at buf[off]) or fill; true when the caller must await flush(). */
  page(block: RamBlock, offset: number, buf: Buffer | undefined, off: number, fill: number): boolean {
    const targets = this.byBlock.get(block.id);
    let flush = false;
    let mapped = false;
    if (targets) {
      for (const t of targets) {
        const rel = offset - t.blockOffset;
        if (rel < 0 || rel >= t.length) continue;
        mapped = true;
        const page = rel / MIGRATION_PAGE_SIZE;
        const full = buf ? this.placed.put(t.range, page, buf, off) : this.placed.fill(t.range, page, fill);
        flush ||= full;
      }
    }
    if (!mapped) this.unmappedPages++;
    return flush;
  }
}
