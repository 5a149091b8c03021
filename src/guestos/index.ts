export { type PhysicalMemory, type MemorySource, PageNotCapturedError, MAX_GUEST_READ, bundlePhysicalMemory, bufferPhysicalMemory, readU32, readU64 } from './memory';
export {
  Vmcoreinfo,
  VmcoreinfoError,
  VmcoreinfoKeyError,
  type VmcoreinfoSource,
  type SectionSource,
  MAX_VMCOREINFO_TEXT,
  VMCOREINFO_SECTION,
  vmcoreinfoFromBundle,
  describeVmcoreinfoSource,
} from './linux/vmcoreinfo';
export { type KernelMemory, type KernelImageMemory, UnmappedAddressError, kernelImageMemory, layeredKernelMemory, vmcoreinfoArch } from './linux/kernel-memory';
export { readPrintkLog, PrintkError, LOG_CONT, LOG_NEWLINE, type PrintkLog, type PrintkRecord, type SkipReason } from './linux/printk';
export { openGuestKernel, findVmcoreinfo, readKernelLog, NoLinuxKernelError, type GuestKernel, type KernelBundle, type PageTableMemoryFactory } from './linux/kernel-log';
export { scanForVmcoreinfo, validateAgainstImage, type PageSource, type ScanResult } from './linux/vmcoreinfo-scan';
