/**
 * Guest-virtual memory on top of guest-physical memory and one address space (a vCPU's page tables).
 * A read crosses page boundaries, translating each page; a page that is not mapped is an error naming
 * that page and the level whose entry was not present, never zeros.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import { MAX_GUEST_READ, type PhysicalMemory } from '../memory';
import { NotMappedError, TableReader, type Translation } from './pgtable';
import { translateX86_64, type X86PagingRegs } from './pgtable-x86_64';
import { translateAarch64, type Aarch64PagingRoot } from './pgtable-aarch64';

export interface AddressSpace {
  /** e.g. "vCPU 1 cr3 0x28a4000 (x86-64 4-level)". */
  readonly description: string;
  /**
   * True when the root is the vCPU's own register (CR3, TTBR1_EL1); false for the kernel's tables found
   * through VMCOREINFO (arm64 swapper_pg_dir when QEMU reports no TTBR1_EL1), which are no vCPU's in particular.
   */
  readonly vcpuOwned: boolean;
  translate(virt: bigint): Promise<Translation>;
}

/**
 * x86-64 from CR3. With page-table isolation (PTI, CONFIG_PAGE_TABLE_ISOLATION) a vCPU captured in user
 * mode has the user half of an 8 KiB pgd pair in CR3 (bit 12 set), which maps almost no kernel memory:
 * a kernel address that is not mapped there is walked again from the kernel half (CR3 without bit 12),
 * and the root's source says so.
 */
export function x86AddressSpace(memory: PhysicalMemory, regs: X86PagingRegs, description: string): AddressSpace {
  const tables = new TableReader(memory);
  const PTI_USER = 1n << 12n;
  return {
    description,
    vcpuOwned: true,
    async translate(virt) {
      const t = await translateX86_64(tables, regs, virt, description);
      if (t.phys !== undefined || (regs.cr3 & PTI_USER) === 0n || virt >> 63n === 0n) return t;
      const kernelHalf = { ...regs, cr3: regs.cr3 & ~PTI_USER };
      const k = await translateX86_64(tables, kernelHalf, virt, `${description}, PTI kernel half ${toHex(kernelHalf.cr3 & 0x000f_ffff_ffff_f000n)} (CR3 holds the user half)`);
      return k.phys !== undefined ? k : t;
    },
  };
}

/** aarch64: kernel addresses (bit 55 set) through TTBR1, user ones through TTBR0 when known. */
export function aarch64AddressSpace(
  memory: PhysicalMemory,
  ttbr1: Aarch64PagingRoot,
  ttbr0: Aarch64PagingRoot | undefined,
  description: string,
  vcpuOwned = true,
): AddressSpace {
  const tables = new TableReader(memory);
  return {
    description,
    vcpuOwned,
    translate(virt) {
      if (((virt >> 55n) & 1n) === 1n) return translateAarch64(tables, ttbr1, virt);
      if (ttbr0 === undefined) {
        throw new VmpmError(`${toHex(virt)} is a user (TTBR0) address; this capture has no TTBR0_EL1 (QEMU 7.2 does not report it for aarch64), so only kernel addresses can be translated`);
      }
      return translateAarch64(tables, ttbr0, virt);
    },
  };
}

export interface VirtualRun {
  virt: bigint;
  phys: bigint;
  length: number;
}

/** The 64-bit address space wraps nowhere: a read must end at or below 2^64. */
const TOP = 1n << 64n;

/**
 * The physical runs backing [virt, virt+length), physically contiguous pages coalesced. Throws
 * NotMappedError for the first page that is not mapped. Bounded by `maxLength`.
 */
export async function planVirtualRead(space: AddressSpace, virt: bigint, length: bigint, maxLength: bigint): Promise<VirtualRun[]> {
  if (length < 0n || length > maxLength) throw new VmpmError(`virtual read of ${length} bytes is larger than ${maxLength}`);
  if (virt + length > TOP) throw new VmpmError(`virtual read of ${length} bytes at ${toHex(virt)} runs past the end of the 64-bit address space`);
  const runs: VirtualRun[] = [];
  const end = virt + length;
  for (let at = virt; at < end; ) {
    const t = await space.translate(at);
    if (t.phys === undefined || t.pageSize === undefined) throw new NotMappedError(t);
    const pageEnd = (at & ~(t.pageSize - 1n)) + t.pageSize;
    const stop = pageEnd < end ? pageEnd : end;
    const n = Number(stop - at);
    const last = runs[runs.length - 1];
    if (last && last.phys + BigInt(last.length) === t.phys && last.virt + BigInt(last.length) === at && last.length + n <= MAX_GUEST_READ) last.length += n;
    else runs.push({ virt: at, phys: t.phys, length: n });
    at = stop;
  }
  return runs;
}

/** Exactly `length` bytes of guest-virtual memory (at most MAX_GUEST_READ), or an error naming the page. */
export async function readVirtual(memory: PhysicalMemory, space: AddressSpace, virt: bigint, length: number): Promise<Buffer> {
  const runs = await planVirtualRead(space, virt, BigInt(length), BigInt(MAX_GUEST_READ));
  const parts: Buffer[] = [];
  for (const r of runs) parts.push(await memory.read(r.phys, r.length));
  return Buffer.concat(parts);
}
