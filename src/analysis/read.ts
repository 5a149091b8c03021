import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import type { AnalysisBundle } from './source';
import { capturedRuns } from './sections';
import type { AddrRange } from './ranges';

const CHUNK = 1 << 20;
/** x86-64 and arm64 physical addresses are at most 52 bits wide. */
const MAX_PHYS_BITS = 52;
const MAX_PHYS = 1n << BigInt(MAX_PHYS_BITS);
/** Canonical upper half: where Linux (and most kernels) map themselves. */
const KERNEL_HALF = 0xffff800000000000n;

/** The first uncaptured sub-range of [start,end), if any. */
export function firstHole(range: AddrRange, runs: readonly AddrRange[]): AddrRange | undefined {
  let cursor = range.start;
  for (const r of runs) {
    if (r.end <= cursor) continue;
    if (r.start > cursor) return { start: cursor, end: r.start < range.end ? r.start : range.end };
    cursor = r.end;
    if (cursor >= range.end) return undefined;
  }
  return cursor < range.end ? { start: cursor, end: range.end } : undefined;
}

/**
 * Guest-physical memory [addr, addr+length) in chunks of at most 1 MiB, so `read -o` of gigabytes runs
 * in bounded memory. Without zeroFill an uncaptured byte anywhere in the request is an error naming the
 * hole, checked before anything is produced.
 */
export async function* readMemory(
  bundle: AnalysisBundle,
  addr: bigint,
  length: bigint,
  options: { zeroFill?: boolean } = {},
): AsyncGenerator<Buffer> {
  if (length <= 0n) return;
  const end = addr + length;
  if (end > 1n << 64n) throw new VmpmError(`read of ${length} bytes at ${toHex(addr)} runs past the end of the 64-bit address space`);
  if (!options.zeroFill) {
    const hole = firstHole({ start: addr, end }, capturedRuns(bundle));
    if (hole && addr >= MAX_PHYS) {
      // An address copied from `regs` (rip, rsp) is virtual; no machine has physical memory up there.
      throw new VmpmError(
        `${toHex(addr)} is not a physical address (above the ${MAX_PHYS_BITS}-bit physical address space): it looks like a ${addr >= KERNEL_HALF ? 'kernel ' : ''}virtual address, e.g. from regs; read it with --virt ${toHex(addr)}`,
      );
    }
    if (hole) {
      const list = capturedRuns(bundle)
        .slice(0, 6)
        .map((r) => `${toHex(r.start)}-${toHex(r.end)}`)
        .join(', ');
      throw new VmpmError(
        `${toHex(hole.start)}-${toHex(hole.end)} was not captured in this bundle (captured: ${list || 'nothing'}); use --zero-fill to read it as zeros`,
      );
    }
  }
  for (let at = addr; at < end; ) {
    const n = end - at > BigInt(CHUNK) ? CHUNK : Number(end - at);
    yield await bundle.read(at, n, { zeroFill: options.zeroFill === true });
    at += BigInt(n);
  }
}

/** Convenience for small reads (hexdumps, contexts): the whole range in one Buffer. */
export async function readSmall(bundle: AnalysisBundle, addr: bigint, length: number, options: { zeroFill?: boolean } = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of readMemory(bundle, addr, BigInt(length), options)) parts.push(c);
  return Buffer.concat(parts);
}
