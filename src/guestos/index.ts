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
