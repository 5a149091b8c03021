/**
 * Guest-physical memory as guest-OS code reads it: exact bytes or an error that names the page that
 * is missing, never zeros for what was not captured (a zero read as a pointer or a length would send a
 * log or page-table walker somewhere plausible and wrong). The virtual readers (page tables, kernel
 * image map) are built on this interface.
 */
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';

/** The largest single read guest-OS code makes; a larger request is a bug or a hostile length. */
export const MAX_GUEST_READ = 16 * 1024 * 1024;
const PAGE = 4096n;

export interface PhysicalMemory {
  /** Describes the memory in messages (the bundle's path). */
  readonly name: string;
  /** Exactly `length` bytes at guest-physical `phys`; throws PageNotCapturedError for a hole. */
  read(phys: bigint, length: number): Promise<Buffer>;
  /** Whether every byte of [phys, phys+length) was captured. */
  has(phys: bigint, length: number): boolean;
}

/** A read touched guest-physical memory the capture does not hold. */
export class PageNotCapturedError extends VmpmError {
  /** The first missing page (4 KiB aligned). */
  readonly page: bigint;
  constructor(readonly phys: bigint, name: string, what?: string) {
    const page = phys & ~(PAGE - 1n);
    super(`${what ? `${what}: ` : ''}guest-physical page ${toHex(page)} (for ${toHex(phys)}) is not captured in ${name}`);
    this.name = 'PageNotCapturedError';
    this.page = page;
  }
}

/** The part of an opened bundle this needs (BundleReader has it). */
export interface MemorySource {
  readonly path: string;
  ranges(): ReadonlyArray<{ start: bigint; length: bigint }>;
  read(addr: bigint, length: number): Promise<Buffer>;
}

/** Physical memory backed by a bundle's captured ranges. */
export function bundlePhysicalMemory(bundle: MemorySource): PhysicalMemory {
  const runs = mergedRuns(bundle.ranges().map((r) => ({ start: r.start, end: r.start + r.length })));
  return rangesMemory(bundle.path, runs, (phys, length) => bundle.read(phys, length));
}

/** Physical memory backed by Buffers at given addresses (tests, imported dumps, hostile samples). */
export function bufferPhysicalMemory(name: string, segments: ReadonlyArray<{ start: bigint; data: Buffer }>): PhysicalMemory {
  const sorted = [...segments].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const runs = mergedRuns(sorted.map((s) => ({ start: s.start, end: s.start + BigInt(s.data.length) })));
  return rangesMemory(name, runs, async (phys, length) => {
    const out = Buffer.alloc(length);
    for (const s of sorted) {
      const end = s.start + BigInt(s.data.length);
      const from = phys > s.start ? phys : s.start;
      const to = phys + BigInt(length) < end ? phys + BigInt(length) : end;
      if (from < to) s.data.copy(out, Number(from - phys), Number(from - s.start), Number(to - s.start));
    }
    return out;
  });
}

interface Run {
  start: bigint;
  end: bigint;
}

function mergedRuns(runs: Run[]): Run[] {
  const sorted = runs.filter((r) => r.end > r.start).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Run[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = r.end > last.end ? r.end : last.end;
    else out.push({ ...r });
  }
  return out;
}

/** First address of [phys, phys+length) that no run covers, or undefined. */
function firstMissing(runs: readonly Run[], phys: bigint, length: number): bigint | undefined {
  let cursor = phys;
  const end = phys + BigInt(length);
  for (const r of runs) {
    if (r.end <= cursor) continue;
    if (r.start > cursor) return cursor;
    cursor = r.end;
    if (cursor >= end) return undefined;
  }
  return cursor < end ? cursor : undefined;
}

function rangesMemory(name: string, runs: readonly Run[], read: (phys: bigint, length: number) => Promise<Buffer>): PhysicalMemory {
  return {
    name,
    has: (phys, length) => phys >= 0n && firstMissing(runs, phys, length) === undefined,
    async read(phys, length) {
      if (!Number.isInteger(length) || length < 0 || length > MAX_GUEST_READ) throw new VmpmError(`guest read of ${length} bytes at ${toHex(phys < 0n ? 0n : phys)} is too large (at most ${MAX_GUEST_READ})`);
      if (phys < 0n || phys + BigInt(length) > 1n << 64n) throw new VmpmError(`guest read of ${length} bytes at ${phys < 0n ? '-' : ''}${toHex(phys < 0n ? -phys : phys)} is outside the 64-bit physical address space`);
      if (length === 0) return Buffer.alloc(0);
      const missing = firstMissing(runs, phys, length);
      if (missing !== undefined) throw new PageNotCapturedError(missing, name);
      return read(phys, length);
    },
  };
}

export async function readU64(mem: PhysicalMemory, phys: bigint): Promise<bigint> {
  return (await mem.read(phys, 8)).readBigUInt64LE(0);
}

export async function readU32(mem: PhysicalMemory, phys: bigint): Promise<number> {
  return (await mem.read(phys, 4)).readUInt32LE(0);
}
