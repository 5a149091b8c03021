/**
 * Two kinds of frame are filled side by side: pages worth compressing, and pages that look
 * incompressible (raw-frame.ts), which go into zstd frames of raw blocks instead of through the
 * compressor. A frame covers consecutive slots, so each open frame batch reserves the next
 * `framePages` slot numbers when it opens; pages take slots from their batch's reservation. Batches
 * that end partly filled (the last ones) leave holes, which compact() closes at the end: every slot
 * number above a hole moves down, in the page index, the digest table and the frame entries, and the
 * frames are listed in slot order (their order in the file does not matter: the trailer locates them).
 */
import { PAGE_SIZE, ZERO_SLOT } from './format';
import type { FrameBatch } from './frame-encoder';
import type { DigestTable, U32List } from './pages';

export class FrameSlots {
  private readonly open: { compressed: FrameBatch | undefined; raw: FrameBatch | undefined } = { compressed: undefined, raw: undefined };
  private nextBase = 0;
  /** Used slots per reservation (index = firstSlot / framePages). */
  private readonly used: number[] = [];

  constructor(
    private readonly framePages: number,
    private readonly takeBuffer: () => Buffer,
  ) {}

  /**
   * Copies page `i` of `input` into the open batch of its kind and returns its slot, and the batch
   * when that filled it (the caller sends it off).
   */
  add(input: Buffer, i: number, raw: boolean): { slot: number; full: FrameBatch | undefined } {
    const kind = raw ? 'raw' : 'compressed';
    let batch = this.open[kind];
    if (!batch) {
      batch = { data: this.takeBuffer(), firstSlot: this.nextBase, slotCount: 0, raw };
      this.used.push(0);
      this.nextBase += this.framePages;
      this.open[kind] = batch;
    }
    input.copy(batch.data, batch.slotCount * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    const slot = batch.firstSlot + batch.slotCount;
    batch.slotCount++;
    this.used[batch.firstSlot / this.framePages] = batch.slotCount;
    if (batch.slotCount < this.framePages) return { slot, full: undefined };
    this.open[kind] = undefined;
    return { slot, full: batch };
  }

  /** The batches still open (partly filled), taken out: the caller flushes them at the end. */
  takeOpen(): FrameBatch[] {
    const out = [this.open.compressed, this.open.raw].filter((b): b is FrameBatch => b !== undefined);
    this.open.compressed = undefined;
    this.open.raw = undefined;
    return out;
  }

  /** Closes the holes partly filled reservations left; call after every frame is written. */
  compact(pageIndex: U32List, digests: DigestTable, frames: Array<{ firstSlot: number }>): void {
    const shift: number[] = [];
    let holes = 0;
    for (let r = 0; r < this.used.length; r++) {
      shift.push(holes);
      holes += this.framePages - this.used[r]!;
    }
    const lastHole = this.framePages - (this.used[this.used.length - 1] ?? this.framePages);
    if (holes - lastHole > 0) {
      const P = this.framePages;
      pageIndex.remap((slot) => (slot === ZERO_SLOT ? slot : slot - shift[Math.floor(slot / P)]!));
      for (const f of frames) f.firstSlot -= shift[Math.floor(f.firstSlot / P)]!;
    }
    digests.compact(this.used.map((u, r) => ({ from: r * this.framePages, count: u })));
    frames.sort((a, b) => a.firstSlot - b.firstSlot);
  }
}
