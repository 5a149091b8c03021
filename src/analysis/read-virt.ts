/**
 * `vmpm read FILE --virt ADDR`: guest-virtual memory through a vCPU's page tables. The whole range is
 * translated before the first byte is produced, so an unmapped page or a mapped page whose frame was
 * not captured is one error naming that page, never zeros and never a half-written output.
 */
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import { planVirtualRead, type VirtualRun } from '../guestos/linux/vmem';
import type { KernelView } from './kernel';

/** The runs of a virtual read are planned in memory first: keep a read to a size that bounds them. */
export const VIRT_READ_MAX = 256n << 20n;
const CHUNK = 1 << 20;

export async function planVirtualBundleRead(view: KernelView, virt: bigint, length: bigint, cpu?: number): Promise<VirtualRun[]> {
  if (length > VIRT_READ_MAX) throw new VmpmError(`--virt reads at most ${VIRT_READ_MAX >> 20n} MiB at a time (asked for ${length} bytes)`);
  const c = view.cpu(cpu);
  const runs = await planVirtualRead(view.space(c.index), virt, length, VIRT_READ_MAX);
  for (const r of runs) {
    if (!view.memory.has(r.phys, r.length)) {
      // Name the first page whose frame is missing.
      for (let off = 0; off < r.length; off += 4096 - Number((r.phys + BigInt(off)) & 0xfffn)) {
        const phys = r.phys + BigInt(off);
        if (!view.memory.has(phys, 1)) {
          const page = (r.virt + BigInt(off)) & ~0xfffn;
          throw new VmpmError(`virtual page ${toHex(page)} maps guest-physical ${toHex(phys & ~0xfffn)}, which is not captured in this bundle`);
        }
      }
    }
  }
  return runs;
}

/**
 * The bytes of planned runs, in chunks of exactly 1 MiB but the last, whatever the run boundaries
 * (so a hexdump of a read that crosses into a page elsewhere in RAM keeps its 16-byte lines).
 */
export async function* readVirtualRuns(view: KernelView, runs: VirtualRun[]): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (const r of runs) {
    for (let off = 0; off < r.length; ) {
      const n = Math.min(CHUNK - pendingBytes, r.length - off);
      pending.push(await view.memory.read(r.phys + BigInt(off), n));
      pendingBytes += n;
      off += n;
      if (pendingBytes === CHUNK) {
        yield Buffer.concat(pending);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}
