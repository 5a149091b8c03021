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
import { PageTableError, TableReader, checkNoLoop, type Translation, type WalkLevel } from './pgtable';

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
  const seen: bigint[] = [root.table];
  let table = root.table;
  let writable = true;
  let user = true;
  let pxn = false;
  let uxn = false;
  for (let level = startLevel; level <= 3; level++) {
    const shift = BigInt(12 + 9 * (3 - level));
    const bitsHere = level === startLevel ? vaBits - Number(shift) : 9;
    const index = Number((virt >> shift) & ((1n << BigInt(bitsHere)) - 1n));
    const name = NAMES[level]!;
    const entryAddr = table + BigInt(index * 8);
    const entry = await tables.entry(table, index, name);
    const valid = (entry & VALID) !== 0n;
    const isTable = (entry & TABLE) !== 0n;
    if (valid && !isTable && (level === 0 || level === 3)) {
      // A block at level 0 does not exist with 4K granule (without LPA2); at level 3 it is reserved.
      throw new PageTableError(`${name} (level ${level}) descriptor ${toHex(entry)} at physical ${toHex(entryAddr)} is a reserved encoding: not a valid translation table`);
    }
    const leaf = valid && (level === 3 || !isTable);
    const lv: WalkLevel = {
      name,
      index,
      table,
      entryAddr,
      entry,
      present: valid,
      leaf,
      writable: leaf ? (entry & AP_RO) === 0n : (entry & AP_TABLE_RO) === 0n,
      user: leaf ? (entry & AP_EL0) !== 0n : (entry & AP_TABLE_EL0) === 0n,
      noExecute: leaf ? (entry & PXN) !== 0n : (entry & PXN_TABLE) !== 0n,
      flags: descriptorFlags(entry, leaf),
    };
    out.levels.push(lv);
    if (!valid) {
      out.notPresent = { level: name, entryAddr, entry };
      return out;
    }
    writable &&= lv.writable;
    user &&= lv.user;
    pxn ||= lv.noExecute;
    uxn ||= leaf ? (entry & UXN) !== 0n : (entry & UXN_TABLE) !== 0n;
    if (leaf) {
      const size = 1n << shift;
      const base = entry & OA_MASK & ~(size - 1n);
      // Kernel code runs at EL1: "no execute" means PXN for a kernel address, UXN for a user one.
      Object.assign(out, { phys: base | (virt & (size - 1n)), pageSize: size, writable, user, noExecute: upper === 1n ? pxn : uxn });
      return out;
    }
    const next = entry & OA_MASK;
    checkNoLoop(seen, next, name, virt);
    table = next;
  }
  throw new PageTableError(`walk of ${toHex(virt)} ended without a leaf`);
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
