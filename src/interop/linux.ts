/**
 * What the exports need to know about a Linux guest, from its VMCOREINFO alone:
 *   - the x86_64 kernel-text mapping: kernel image virtual v lives at physical
 *     v - __START_KERNEL_map + phys_base (arch/x86/include/asm/page_64.h __phys_addr_symbol), which
 *     /proc/vmcore exposes as a PT_LOAD and drgn needs to read the page tables themselves;
 *   - phys_base for the kdump sub-header (Linux prints NUMBER(phys_base) in decimal, possibly
 *     negative; QEMU 7.2 parses it as hex, which is why its kdump headers are wrong);
 *   - the utsname fields crash and libkdumpfile check.
 */
import { Vmcoreinfo } from '../guestos/linux/vmcoreinfo';
import type { Utsname } from '../formats/kdump/header';

const START_KERNEL_MAP = 0xffffffff80000000n;
/** KERNEL_IMAGE_SIZE with KASLR (1 GiB): the modules area starts right after it. */
const KERNEL_IMAGE_MAX = 1n << 30n;
/** Past the highest kernel symbol VMCOREINFO names, how much more image (bss, brk) to map. */
const IMAGE_SLACK = 64n << 20n;
const ALIGN_2M = 2n << 20n;

export interface KernelTextWindow {
  vaddr: bigint;
  paddr: bigint;
  size: bigint;
}

export function parseVmcoreinfo(text: Buffer | undefined, warnings: string[]): Vmcoreinfo | undefined {
  if (text === undefined) return undefined;
  try {
    return Vmcoreinfo.parse(text, { kind: 'section', name: 'vmcoreinfo' });
  } catch (err) {
    warnings.push(`VMCOREINFO not used: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * The virtual window [_stext rounded down to 2 MiB, end of the image) and where it lies physically,
 * clipped to the captured range that holds it. undefined (with a warning) when VMCOREINFO lacks
 * _stext or phys_base or the kernel's physical pages were not captured.
 */
export function kernelTextWindow(
  info: Vmcoreinfo,
  ranges: ReadonlyArray<{ start: bigint; length: bigint }>,
  warnings: string[],
): KernelTextWindow | undefined {
  const stext = info.symbolIfAny('_stext');
  const physBase = info.numberIfAny('phys_base');
  if (stext === undefined || physBase === undefined) {
    warnings.push('VMCOREINFO has no SYMBOL(_stext) or NUMBER(phys_base): no kernel-text PT_LOAD (drgn cannot read virtual addresses)');
    return undefined;
  }
  if (stext < START_KERNEL_MAP || stext >= START_KERNEL_MAP + KERNEL_IMAGE_MAX) {
    warnings.push(`SYMBOL(_stext)=${stext.toString(16)} is outside the x86_64 kernel image area: no kernel-text PT_LOAD`);
    return undefined;
  }
  const toPhys = (v: bigint): bigint => v - START_KERNEL_MAP + physBase;
  const vstart = stext - (stext % ALIGN_2M);
  let highest = stext;
  for (const key of info.keys()) {
    const m = /^SYMBOL\((.+)\)$/.exec(key);
    const v = m ? info.symbolIfAny(m[1]!) : undefined;
    if (v !== undefined && v > highest && v < START_KERNEL_MAP + KERNEL_IMAGE_MAX) highest = v;
  }
  let vend = ((highest + IMAGE_SLACK + ALIGN_2M - 1n) / ALIGN_2M) * ALIGN_2M;
  if (vend > START_KERNEL_MAP + KERNEL_IMAGE_MAX) vend = START_KERNEL_MAP + KERNEL_IMAGE_MAX;
  const pstart = toPhys(vstart);
  const range = ranges.find((r) => r.start <= toPhys(stext) && toPhys(stext) < r.start + r.length);
  if (!range) {
    warnings.push(`the kernel's physical pages (around 0x${toPhys(stext).toString(16)}) are not captured: no kernel-text PT_LOAD`);
    return undefined;
  }
  const from = pstart > range.start ? pstart : range.start;
  const rangeEnd = range.start + range.length;
  const pend = toPhys(vend) < rangeEnd ? toPhys(vend) : rangeEnd;
  const pageFloor = (n: bigint): bigint => n - (n % 4096n);
  const paddr = from + ((4096n - (from % 4096n)) % 4096n);
  const size = pageFloor(pend) - paddr;
  return { vaddr: paddr - physBase + START_KERNEL_MAP, paddr, size };
}

/** utsname for a kdump header: release from VMCOREINFO, machine from the architecture. */
export function utsnameFor(info: Vmcoreinfo | undefined, machine: string): Utsname {
  return {
    sysname: info ? 'Linux' : '',
    nodename: '',
    release: info?.osRelease ?? '',
    version: '',
    machine,
    domainname: '',
  };
}
