/**
 * Kernel virtual memory without page tables: the two mappings VMCOREINFO alone describes.
 *
 * - x86_64 kernel image (text, data, bss, where `prb`, `printk_rb_static` and its static buffers live):
 *   phys = virt - __START_KERNEL_map + phys_base (NUMBER(phys_base); negative under KASLR).
 * - aarch64 kernel image: phys = virt - kimage_voffset; linear map: phys = (virt & ~PAGE_OFFSET) +
 *   PHYS_OFFSET with PAGE_OFFSET = -(1 << VA_BITS) (arch/arm64/include/asm/memory.h, 5.11+).
 *
 * Anything else (the x86_64 direct map, whose base KASLR randomizes and VMCOREINFO does not publish;
 * vmalloc) needs a page-table walk: a caller that has one passes its own KernelMemory instead.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';
import type { Vmcoreinfo } from './vmcoreinfo';

/** Reads guest kernel virtual memory; throws a VmpmError naming an address it cannot map or a missing page. */
export interface KernelMemory {
  readonly arch: 'x86_64' | 'aarch64';
  /** How virtual addresses are mapped, for messages ("kernel image map (phys_base)", "page tables"). */
  readonly how: string;
  read(virt: bigint, length: number): Promise<Buffer>;
}

/** The linear maps VMCOREINFO describes: reads, plus the physical address of a mapped kernel address. */
export interface KernelImageMemory extends KernelMemory {
  /** The physical address of `virt`, or undefined when these maps do not cover it. */
  toPhys(virt: bigint): bigint | undefined;
}

export class UnmappedAddressError extends VmpmError {
  constructor(readonly virt: bigint, how: string) {
    super(`kernel address ${toHex(virt)} is outside what the ${how} covers`);
    this.name = 'UnmappedAddressError';
  }
}

const START_KERNEL_MAP = 0xffffffff80000000n;
const U64 = (1n << 64n) - 1n;
/** x86_64 KERNEL_IMAGE_SIZE is 1 GiB with KASLR, 512 MiB without; the note publishes it from 4.x on. */
const DEFAULT_X86_IMAGE = 1n << 30n;

/** Which architecture a VMCOREINFO text describes, from keys only one of them writes. */
export function vmcoreinfoArch(info: Vmcoreinfo): 'x86_64' | 'aarch64' | undefined {
  if (info.numberIfAny('kimage_voffset') !== undefined) return 'aarch64';
  if (info.numberIfAny('phys_base') !== undefined || info.symbolIfAny('init_top_pgt') !== undefined) return 'x86_64';
  return undefined;
}

/** The kernel-image (and on aarch64 linear-map) reader for `info` over `mem`. */
export function kernelImageMemory(info: Vmcoreinfo, mem: PhysicalMemory): KernelImageMemory {
  const arch = vmcoreinfoArch(info);
  if (arch === 'x86_64') {
    const physBase = info.number('phys_base');
    const size = info.numberIfAny('KERNEL_IMAGE_SIZE') ?? DEFAULT_X86_IMAGE;
    const how = 'x86_64 kernel image map (__START_KERNEL_map + phys_base)';
    const toPhys = (virt: bigint): bigint | undefined => {
      if (virt < START_KERNEL_MAP || virt - START_KERNEL_MAP >= size) return undefined;
      const phys = virt - START_KERNEL_MAP + physBase;
      return phys >= 0n ? phys : undefined;
    };
    return reader(arch, how, toPhys, mem);
  }
  if (arch === 'aarch64') {
    const voffset = info.number('kimage_voffset') & U64;
    const physOffset = info.number('PHYS_OFFSET') & U64;
    const vaBits = Number(info.number('VA_BITS'));
    if (vaBits < 36 || vaBits > 52) throw new VmpmError(`VMCOREINFO NUMBER(VA_BITS)=${vaBits} is not an arm64 value`);
    const pageOffset = (U64 << BigInt(vaBits)) & U64;
    // The kernel image lives in the upper half of the vmalloc area, the linear map in the lower half of the kernel range.
    const linearEnd = (pageOffset + (1n << BigInt(vaBits - 1))) & U64;
    // The image is the part of the upper half from _stext on (1 GiB is far more than any arm64 Image);
    // the rest of that half is vmalloc, which only page tables map.
    const stext = info.symbolIfAny('_stext');
    const imageStart = stext === undefined ? linearEnd : stext - 0x10000n;
    const imageEnd = stext === undefined ? U64 : stext + (1n << 30n);
    const how = 'arm64 kernel image and linear map (kimage_voffset, PHYS_OFFSET)';
    const toPhys = (virt: bigint): bigint | undefined => {
      if (virt >= pageOffset && virt < linearEnd) return (virt & ~pageOffset & U64) + physOffset;
      if (virt >= imageStart && virt < imageEnd && virt >= linearEnd && virt > voffset) return virt - voffset;
      return undefined;
    };
    return reader(arch, how, toPhys, mem);
  }
  throw new VmpmError('VMCOREINFO names neither an x86_64 (NUMBER(phys_base)) nor an arm64 (NUMBER(kimage_voffset)) kernel');
}

function reader(arch: KernelMemory['arch'], how: string, toPhys: (virt: bigint) => bigint | undefined, mem: PhysicalMemory): KernelImageMemory {
  return {
    arch,
    how,
    toPhys,
    async read(virt, length) {
      const phys = toPhys(virt);
      // Both mappings are linear: the last byte must map through the same rule as the first.
      const last = length > 0 ? toPhys(virt + BigInt(length - 1)) : phys;
      if (phys === undefined) throw new UnmappedAddressError(virt, how);
      if (last === undefined || last - phys !== BigInt(Math.max(length - 1, 0))) throw new UnmappedAddressError(virt + BigInt(length - 1), how);
      return mem.read(phys, length);
    },
  };
}

/**
 * Reads through `first` and, for an address it does not map, through `fallback` (e.g. the page tables
 * of a captured vCPU): the kernel-image map needs no register and survives corrupt page tables, the
 * page-table walk reaches the x86_64 direct map where dynamically allocated log buffers live.
 */
export function layeredKernelMemory(first: KernelMemory, fallback: KernelMemory | undefined): KernelMemory {
  if (fallback === undefined) return first;
  return {
    arch: first.arch,
    how: `${first.how}, else ${fallback.how}`,
    async read(virt, length) {
      try {
        return await first.read(virt, length);
      } catch (err) {
        if (err instanceof UnmappedAddressError) return fallback.read(virt, length);
        throw err;
      }
    },
  };
}
