/**
 * A small read cache over KernelMemory for walkers that make many small reads close together (the
 * printk descriptor and info arrays, the text ring): reads are served from aligned 64 KiB blocks, at
 * most BLOCKS of them kept, so memory stays bounded whatever the ring's claimed size. A block that
 * cannot be read whole (it crosses the end of a mapping or a missing page) falls back to exact reads.
 */
import type { KernelMemory } from './kernel-memory';

const BLOCK = 64 * 1024;
const BLOCKS = 32;

export class BlockCache {
  private readonly blocks = new Map<bigint, Buffer | null>();
  constructor(private readonly mem: KernelMemory) {}

  async read(virt: bigint, length: number): Promise<Buffer> {
    const first = virt - (virt % BigInt(BLOCK));
    const offset = Number(virt - first);
    if (offset + length <= BLOCK) {
      const block = await this.block(first);
      if (block) return Buffer.from(block.subarray(offset, offset + length));
    }
    return this.mem.read(virt, length);
  }

  async u64(virt: bigint): Promise<bigint> {
    return (await this.read(virt, 8)).readBigUInt64LE(0);
  }

  async u32(virt: bigint): Promise<number> {
    return (await this.read(virt, 4)).readUInt32LE(0);
  }

  private async block(base: bigint): Promise<Buffer | null> {
    const hit = this.blocks.get(base);
    if (hit !== undefined) {
      this.blocks.delete(base);
      this.blocks.set(base, hit);
      return hit;
    }
    let data: Buffer | null;
    try {
      data = await this.mem.read(base, BLOCK);
    } catch {
      data = null; // exact reads will name the problem
    }
    this.blocks.set(base, data);
    if (this.blocks.size > BLOCKS) this.blocks.delete(this.blocks.keys().next().value as bigint);
    return data;
  }
}
