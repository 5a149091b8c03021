/**
 * The guest kernel's story from a bundle in one call: its VMCOREINFO (the bundle's section, else the
 * copy the kernel keeps in RAM, validated), the memory reader built from it, and the log records.
 * Used by `klog`, `info`, `report`, `diff` and `watch`, so they all agree on what the kernel said.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import { bundlePhysicalMemory, type MemorySource, type PhysicalMemory } from '../memory';
import { kernelImageMemory, layeredKernelMemory, type KernelMemory } from './kernel-memory';
import { readPrintkLog, type PrintkLog } from './printk';
import { type SectionSource, type Vmcoreinfo, vmcoreinfoFromBundle } from './vmcoreinfo';
import { scanForVmcoreinfo, type PageSource } from './vmcoreinfo-scan';

export type KernelBundle = SectionSource & MemorySource & PageSource;

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
 * A page-table reader for what the kernel-image map does not cover (the x86_64 direct map where a
 * log_buf_len= buffer lives, vmalloc): given physical memory and VMCOREINFO, a KernelMemory or
 * undefined. Passed in by the analysis layer, which knows the captured vCPUs.
 */
export type PageTableMemoryFactory = (physical: PhysicalMemory, info: Vmcoreinfo) => Promise<KernelMemory | undefined>;

/** The bundle's VMCOREINFO: its section, else the kernel's own copy found in RAM and validated. */
export async function findVmcoreinfo(bundle: KernelBundle, physical: PhysicalMemory = bundlePhysicalMemory(bundle)): Promise<Vmcoreinfo> {
  const section = await vmcoreinfoFromBundle(bundle);
  if (section !== undefined) return section;
  if (bundle.ranges().length === 0) throw new NoLinuxKernelError(`${bundle.path}: no Linux kernel found (no VMCOREINFO section, and no guest RAM captured to look for one in)`);
  const scan = await scanForVmcoreinfo(physical, bundle);
  if (scan.info !== undefined) return scan.info;
  const rejected = scan.rejected.length > 0 ? `; ${scan.rejected.length} look-alike page(s) rejected, e.g. ${toHex(scan.rejected[0]!.phys)}: ${scan.rejected[0]!.why}` : '';
  throw new NoLinuxKernelError(`${bundle.path}: no Linux kernel found (no VMCOREINFO section, and no VMCOREINFO text in ${scan.pagesScanned} non-zero RAM pages${rejected}); --scan looks for log-like text anywhere in RAM`);
}

/** The bundle's guest kernel: VMCOREINFO from the section or RAM, and readers over its memory. */
export async function openGuestKernel(bundle: KernelBundle, options: { pageTables?: PageTableMemoryFactory } = {}): Promise<GuestKernel> {
  const physical = bundlePhysicalMemory(bundle);
  const info = await findVmcoreinfo(bundle, physical);
  const image = kernelImageMemory(info, physical);
  const tables = options.pageTables ? await options.pageTables(physical, info).catch(() => undefined) : undefined;
  return { info, physical, memory: layeredKernelMemory(image, tables) };
}

/** The kernel log of the bundle's guest. */
export async function readKernelLog(kernel: GuestKernel): Promise<PrintkLog> {
  return readPrintkLog(kernel.info, kernel.memory);
}
