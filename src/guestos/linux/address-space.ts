/**
 * Which page tables translate a Linux guest's addresses, per vCPU: x86-64 from the captured CR3 (and
 * CR0/CR4/EFER); aarch64 from TTBR1_EL1/TTBR0_EL1 when the capture has them, else TTBR1 derived from
 * VMCOREINFO (swapper_pg_dir - kimage_voffset, VA_BITS from TCR_EL1_T1SZ). Also the kernel image's
 * fixed mapping as VMCOREINFO states it, which the page tables must agree with.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';
import type { Vmcoreinfo } from './vmcoreinfo';
import { x86PagingRegs } from './pgtable-x86_64';
import { aarch64AddressSpace, x86AddressSpace, type AddressSpace } from './vmem';

/** x86-64 __START_KERNEL_map (arch/x86/include/asm/page_64_types.h). */
export const X86_START_KERNEL_MAP = 0xffff_ffff_8000_0000n;
const MASK64 = (1n << 64n) - 1n;

export interface VcpuRegisters {
  index: number;
  arch: string;
  registers: Record<string, string>;
}

/** The address space a vCPU was using when captured. */
export function vcpuAddressSpace(memory: PhysicalMemory, cpu: VcpuRegisters, info: Vmcoreinfo | undefined): AddressSpace {
  if (cpu.arch === 'x86_64') {
    const regs = x86PagingRegs(cpu.registers, cpu.index);
    return x86AddressSpace(memory, regs, `vCPU ${cpu.index} cr3 ${toHex(regs.cr3)}`);
  }
  if (cpu.arch === 'aarch64') return aarch64Space(memory, cpu, info);
  throw new VmpmError(`vCPU ${cpu.index} is ${cpu.arch}: vmpm walks x86_64 and aarch64 page tables only`);
}

function aarch64Space(memory: PhysicalMemory, cpu: VcpuRegisters, info: Vmcoreinfo | undefined): AddressSpace {
  const reg = (name: string): bigint | undefined => {
    const v = cpu.registers[name];
    return v !== undefined && /^0x[0-9a-fA-F]{1,16}$/.test(v) ? BigInt(v) : undefined;
  };
  // TTBRn_EL1: BADDR in bits 47:1 (bit 0 CnP), ASID in 63:48.
  const baddr = (v: bigint) => v & 0x0000_ffff_ffff_fffen;
  const vaBits = aarch64VaBits(info);
  const ttbr1 = reg('ttbr1_el1');
  const ttbr0 = reg('ttbr0_el1');
  if (ttbr1 !== undefined) {
    return aarch64AddressSpace(
      memory,
      { table: baddr(ttbr1), vaBits, source: `vCPU ${cpu.index} ttbr1_el1 ${toHex(ttbr1)}` },
      ttbr0 === undefined ? undefined : { table: baddr(ttbr0), vaBits, source: `vCPU ${cpu.index} ttbr0_el1 ${toHex(ttbr0)}` },
      `vCPU ${cpu.index} ttbr1_el1 ${toHex(ttbr1)}`,
    );
  }
  if (info === undefined) throw new VmpmError('this aarch64 capture has no TTBR1_EL1 and no VMCOREINFO: there is no page-table root to walk from');
  const swapper = info.symbol('swapper_pg_dir');
  const table = kernelImagePhys(info, 'aarch64', swapper);
  const source = `swapper_pg_dir ${toHex(swapper)} = physical ${toHex(table)} (VMCOREINFO; QEMU 7.2 does not report TTBR1_EL1)`;
  return aarch64AddressSpace(memory, { table, vaBits, source }, undefined, `kernel page tables at ${toHex(table)} (swapper_pg_dir from VMCOREINFO)`, false);
}

/** VA_BITS of the kernel half: 64 - TCR_EL1.T1SZ (5.x+ publish it), else NUMBER(VA_BITS). */
function aarch64VaBits(info: Vmcoreinfo | undefined): number {
  const t1sz = info?.numberIfAny('TCR_EL1_T1SZ');
  if (t1sz !== undefined && t1sz > 0n && t1sz < 64n) return 64 - Number(t1sz);
  const va = info?.numberIfAny('VA_BITS');
  if (va !== undefined) return Number(va);
  return 48;
}

/**
 * Physical address of a kernel-image (text/data/bss) virtual address as VMCOREINFO states it:
 * x86-64 `virt - __START_KERNEL_map + phys_base`; arm64 `virt - kimage_voffset`.
 */
export function kernelImagePhys(info: Vmcoreinfo, arch: string, virt: bigint): bigint {
  if (arch === 'x86_64') {
    if (virt < X86_START_KERNEL_MAP) throw new VmpmError(`${toHex(virt)} is not a kernel-image address (below __START_KERNEL_map)`);
    return (virt - X86_START_KERNEL_MAP + info.number('phys_base')) & MASK64;
  }
  if (arch === 'aarch64') return (virt - info.number('kimage_voffset')) & MASK64;
  throw new VmpmError(`no kernel-image mapping known for ${arch}`);
}
