/**
 * AArch64 stage-1 translation with the 4 KiB granule (Arm ARM D8, "VMSAv8-64 translation table
 * format"), as Linux sets it up (arch/arm64/include/asm/pgtable-hwdef.h): VA_BITS 39 (3 levels) or
 * 48 (4 levels), table / block / page descriptors, 1 GiB blocks at level 1 and 2 MiB blocks at level 2.
 *
 * QEMU 7.2's HMP `info registers` prints no TTBR/TCR for aarch64, so the root of kernel (TTBR1)
 * walks is derived from VMCOREINFO: swapper_pg_dir is the kernel's TTBR1 table once paging_init()
 * ran, and its physical address is the kernel-image virtual address minus kimage_voffset. User
 * addresses need TTBR0 (the current task's mm), which such a capture does not hold.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';
import { PageTableError, TableReader, walkPageTables, type PageTableFormat, type Translation } from './pgtable';

const VALID = 1n << 0n;
const TABLE = 1n << 1n;
const AP_EL0 = 1n << 6n; // AP[1]: EL0 may access
const AP_RO = 1n << 7n; // AP[2]: read-only
const AF = 1n << 10n;
const NG = 1n << 11n;
const PXN = 1n << 53n;
const UXN = 1n << 54n;
const PXN_TABLE = 1n << 59n;
const UXN_TABLE = 1n << 60n;
const AP_TABLE_EL0 = 1n << 61n; // APTable[0]: no EL0 access below
const AP_TABLE_RO = 1n << 62n; // APTable[1]: read-only below
/** Output address bits 47:12 (no 52-bit PA: Debian's 4K-granule kernels use 48-bit). */
const OA_MASK = 0x0000_ffff_ffff_f000n;

const NAMES = ['pgd', 'pud', 'pmd', 'pte'];

export interface Aarch64PagingRoot {
  /** Physical address of the level-0/1 table (TTBR1 or TTBR0 BADDR). */
  table: bigint;
  /** Virtual address bits of the half being walked (64 - TnSZ). */
  vaBits: number;
  source: string;
}

/** Translates a kernel (TTBR1) or user (TTBR0) address with the 4 KiB granule. */
export async function translateAarch64(memory: PhysicalMemory | TableReader, root: Aarch64PagingRoot, virt: bigint): Promise<Translation> {
  const { vaBits } = root;
  if (!Number.isInteger(vaBits) || vaBits < 25 || vaBits > 48) throw new VmpmError(`VA_BITS ${vaBits} is not supported with the 4 KiB granule (25..48)`);
  const upper = (virt >> 55n) & 1n;
  const top = virt >> BigInt(vaBits);
  const expected = upper === 1n ? (1n << BigInt(64 - vaBits)) - 1n : 0n;
  if (top !== expected) {
    throw new VmpmError(`${toHex(virt)} is outside both ${vaBits}-bit halves of the aarch64 address space (bits 63..${vaBits} must be all 0 or all 1)`);
  }
  const levels = Math.ceil((vaBits - 12) / 9);
  const startLevel = 4 - levels;
  const tables = memory instanceof TableReader ? memory : new TableReader(memory);
  const out: Translation = { virt, root: { phys: root.table, source: root.source }, mode: `aarch64 4K granule, ${vaBits}-bit VA, ${levels} levels`, levels: [] };
  return walkPageTables(tables, out, aarch64Format(startLevel, vaBits, upper === 1n));
}

/**
 * 4 KiB-granule descriptors from level `startLevel` (0 for 48-bit VA, 1 for 39-bit): table, block (levels 1
 * and 2) or page (level 3). A leaf's permissions come from AP and PXN/UXN, a table's from APTable and
 * PXNTable/UXNTable, which restrict everything below it.
 */
function aarch64Format(startLevel: number, vaBits: number, kernelHalf: boolean): PageTableFormat {
  const spans = [];
  for (let level = startLevel; level <= 3; level++) {
    const shift = 12 + 9 * (3 - level);
    spans.push({ name: NAMES[level]!, shift: BigInt(shift), bits: level === startLevel ? vaBits - shift : 9 });
  }
  return {
    levels: spans,
    decode(entry, i, entryAddr) {
      const level = startLevel + i;
      const name = NAMES[level]!;
      const valid = (entry & VALID) !== 0n;
      const isTable = (entry & TABLE) !== 0n;
      if (valid && !isTable && (level === 0 || level === 3)) {
        // A block at level 0 does not exist with 4K granule (without LPA2); at level 3 it is reserved.
        throw new PageTableError(`${name} (level ${level}) descriptor ${toHex(entry)} at physical ${toHex(entryAddr)} is a reserved encoding: not a valid translation table`);
      }
      const leaf = valid && (level === 3 || !isTable);
      return {
        present: valid,
        leaf,
        writable: leaf ? (entry & AP_RO) === 0n : (entry & AP_TABLE_RO) === 0n,
        user: leaf ? (entry & AP_EL0) !== 0n : (entry & AP_TABLE_EL0) === 0n,
        noExecute: leaf ? (entry & PXN) !== 0n : (entry & PXN_TABLE) !== 0n,
        flags: descriptorFlags(entry, leaf),
        address: entry & OA_MASK,
      };
    },
    effective(levels) {
      // Kernel code runs at EL1: "no execute" means PXN for a kernel address, UXN for a user one.
      const uxn = levels.some((l) => (l.entry & (l.leaf ? UXN : UXN_TABLE)) !== 0n);
      return { writable: levels.every((l) => l.writable), user: levels.every((l) => l.user), noExecute: kernelHalf ? levels.some((l) => l.noExecute) : uxn };
    },
  };
}

function descriptorFlags(entry: bigint, leaf: boolean): string[] {
  const flags: string[] = [leaf ? ((entry & TABLE) !== 0n ? 'PAGE' : 'BLOCK') : 'TABLE'];
  const add = (bit: bigint, name: string) => {
    if ((entry & bit) !== 0n) flags.push(name);
  };
  if (leaf) {
    add(AF, 'AF');
    add(NG, 'nG');
    add(AP_EL0, 'AP[1]=EL0');
    add(AP_RO, 'AP[2]=RO');
    add(PXN, 'PXN');
    add(UXN, 'UXN');
  } else {
    add(PXN_TABLE, 'PXNTable');
    add(UXN_TABLE, 'UXNTable');
    add(AP_TABLE_EL0, 'APTable[0]');
    add(AP_TABLE_RO, 'APTable[1]');
  }
  return flags;
}
