/**
 * The guest kernel's story from a bundle in one call: its VMCOREINFO (the bundle's section, else the
 * copy the kernel keeps in RAM, validated), the memory reader built from it, and the log records.
 * Used by `klog`, `info`, `report`, `diff` and `watch`, so they all agree on what the kernel said.
 */
import { VmpmError } from '../../util/errors';
import { bundlePhysicalMemory, type MemorySource, type PhysicalMemory } from '../memory';
import { kernelImageMemory, layeredKernelMemory, type KernelMemory } from './kernel-memory';
import { readPrintkLog, type PrintkLog } from './printk';
import { type SectionSource, type Vmcoreinfo, vmcoreinfoFromBundle } from './vmcoreinfo';
import { findVmcoreinfoInRam } from './vmcoreinfo-scan';

export type KernelBundle = SectionSource & MemorySource;

export interface GuestKernel {
  info: Vmcoreinfo;
  physical: PhysicalMemory;
  memory: KernelMemory;
}

/** Thrown when the bundle has nothing that says it holds a Linux kernel. */
export class NoLinuxKernelError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'NoLinuxKernelError';
  }
}

/**
 * A hook for a page-table reader (the x86_64 direct map, vmalloc): given the bundle, its physical
 * memory and VMCOREINFO, a KernelMemory or undefined. Registered by the code that walks page tables,
 * so this module does not depend on it.
 */
export type PageTableMemoryFactory = (bundle: KernelBundle, physical: PhysicalMemory, info: Vmcoreinfo) => Promise<KernelMemory | undefined>;
let pageTableFactory: PageTableMemoryFactory | undefined;
export function registerPageTableMemory(factory: PageTableMemoryFactory): void {
  pageTableFactory = factory;
}

/** The bundle's guest kernel: VMCOREINFO from the section or RAM, and readers over its memory. */
export async function openGuestKernel(bundle: KernelBundle): Promise<GuestKernel> {
  const physical = bundlePhysicalMemory(bundle);
  let info = await vmcoreinfoFromBundle(bundle);
  if (info === undefined) {
    if (bundle.ranges().length === 0) throw new NoLinuxKernelError(`${bundle.path} has no VMCOREINFO section and no guest RAM to look for one in`);
    info = await findVmcoreinfoInRam(physical);
    if (info === undefined) {
      throw new NoLinuxKernelError(`${bundle.path}: no Linux kernel found (no VMCOREINFO section, and no VMCOREINFO text in RAM that matches a kernel image); --scan looks for log-like text anywhere in RAM`);
    }
  }
  const image = kernelImageMemory(info, physical);
  const tables = pageTableFactory ? await pageTableFactory(bundle, physical, info).catch(() => undefined) : undefined;
  return { info, physical, memory: layeredKernelMemory(image, tables) };
}

/** The kernel log of the bundle's guest. */
export async function readKernelLog(kernel: GuestKernel): Promise<PrintkLog> {
  return readPrintkLog(kernel.info, kernel.memory);
}
