/**
 * x86-64 long-mode page walk from a vCPU's CR3 (Intel SDM vol. 3A ch. 4.5): 4-level paging, or
 * 5-level when CR4.LA57 is set; 1 GiB pages (PS in a PDPTE / pud) and 2 MiB pages (PS in a PDE /
 * pmd). Names follow the kernel (arch/x86/include/asm/pgtable_types.h): pgd, p4d, pud, pmd, pte.
 * A walk reads at most five entries, so it is bounded by construction; a loop or an entry that points
 * outside captured RAM is a PageTableError naming the level.
 */
import { VmpmError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';
import { PageTableError, TableReader, walkPageTables, type PageTableFormat, type Translation } from './pgtable';

const P = 1n << 0n;
const RW = 1n << 1n;
const US = 1n << 2n;
const PWT = 1n << 3n;
const PCD = 1n << 4n;
const A = 1n << 5n;
const D = 1n << 6n;
const PS = 1n << 7n;
const G = 1n << 8n;
const NX = 1n << 63n;
/** Bits 51:12 of an entry (or of CR3) hold the next table's / the page's physical address. */
const ADDR_MASK = 0x000f_ffff_ffff_f000n;

const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const CR4_LA57 = 1n << 12n;
const EFER_LMA = 1n << 10n;
const EFER_NXE = 1n << 11n;

/** The registers a walk needs, from the bundle's cpus section. */
export interface X86PagingRegs {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

interface LevelSpec {
  name: string;
  shift: bigint;
  /** Whether PS may make this level a leaf, and the page size then. */
  largePage?: bigint;
}

const LEVELS5: LevelSpec[] = [
  { name: 'pgd', shift: 48n },
  { name: 'p4d', shift: 39n },
  { name: 'pud', shift: 30n, largePage: 1n << 30n },
  { name: 'pmd', shift: 21n, largePage: 1n << 21n },
  { name: 'pte', shift: 12n },
];
// With 4-level paging the kernel folds p4d into pgd: the top table (PML4) is the pgd.
const LEVELS4: LevelSpec[] = [LEVELS5[0]!, ...LEVELS5.slice(2)].map((l, i) => (i === 0 ? { ...l, shift: 39n } : l));

export function x86PagingMode(regs: X86PagingRegs): '4-level' | '5-level' {
  if ((regs.cr0 & CR0_PG) === 0n || (regs.cr4 & CR4_PAE) === 0n || (regs.efer & EFER_LMA) === 0n) {
    throw new VmpmError(
      `the vCPU is not in 64-bit long mode with paging (cr0=${toHex(regs.cr0)} cr4=${toHex(regs.cr4)} efer=${toHex(regs.efer)}): there are no 4- or 5-level page tables to walk`,
    );
  }
  return (regs.cr4 & CR4_LA57) !== 0n ? '5-level' : '4-level';
}

/** Canonical form: bits 63..(N-1) all equal, N = 48 (4-level) or 57 (5-level). */
function checkCanonical(virt: bigint, bits: bigint): void {
  const top = virt >> (bits - 1n);
  if (top !== 0n && top !== (1n << (65n - bits)) - 1n) {
    throw new VmpmError(`${toHex(virt)} is not a canonical ${bits}-bit x86-64 address (bits 63..${bits - 1n} must all be equal)`);
  }
}

/**
 * Translates `virt` through the page tables at `regs.cr3`. Returns the walk with `phys` set, or with
 * `notPresent` set when a level's entry is not present (a real, reportable fault, not an error).
 */
export async function translateX86_64(memory: PhysicalMemory | TableReader, regs: X86PagingRegs, virt: bigint, rootSource = 'cr3'): Promise<Translation> {
  const mode = x86PagingMode(regs);
  const specs = mode === '5-level' ? LEVELS5 : LEVELS4;
  checkCanonical(virt, mode === '5-level' ? 57n : 48n);
  const nxEnabled = (regs.efer & EFER_NXE) !== 0n;
  const tables = memory instanceof TableReader ? memory : new TableReader(memory);
  const root = regs.cr3 & ADDR_MASK;
  const out: Translation = { virt, root: { phys: root, source: rootSource }, mode: `x86-64 ${mode}`, levels: [] };
  return walkPageTables(tables, out, x86Format(specs, nxEnabled));
}

/** x86-64 entries: P, RW, US, NX per level; PS makes a pud/pmd a 1 GiB / 2 MiB leaf. */
function x86Format(specs: LevelSpec[], nxEnabled: boolean): PageTableFormat {
  return {
    levels: specs.map((s) => ({ name: s.name, shift: s.shift, bits: 9 })),
    decode(entry, level, entryAddr) {
      const spec = specs[level]!;
      const present = (entry & P) !== 0n;
      if (present && !nxEnabled && (entry & NX) !== 0n) {
        throw new PageTableError(`${spec.name} entry ${toHex(entry)} at physical ${toHex(entryAddr)} sets bit 63 while EFER.NXE is off (a reserved bit): not a valid page-table entry`);
      }
      return {
        present,
        leaf: present && (spec.shift === 12n || (spec.largePage !== undefined && (entry & PS) !== 0n)),
        writable: (entry & RW) !== 0n,
        user: (entry & US) !== 0n,
        noExecute: nxEnabled && (entry & NX) !== 0n,
        flags: entryFlags(entry, spec),
        address: entry & ADDR_MASK,
      };
    },
    effective: (levels) => ({ writable: levels.every((l) => l.writable), user: levels.every((l) => l.user), noExecute: levels.some((l) => l.noExecute) }),
  };
}

function entryFlags(entry: bigint, spec: LevelSpec): string[] {
  const flags: string[] = [];
  const add = (bit: bigint, name: string) => {
    if ((entry & bit) !== 0n) flags.push(name);
  };
  add(P, 'P');
  add(RW, 'RW');
  add(US, 'US');
  add(PWT, 'PWT');
  add(PCD, 'PCD');
  add(A, 'A');
  if (spec.largePage !== undefined || spec.shift === 12n) add(D, 'D');
  if (spec.largePage !== undefined) add(PS, 'PS');
  if (spec.largePage !== undefined || spec.shift === 12n) add(G, 'G');
  add(NX, 'NX');
  return flags;
}

/** Reads cr0/cr3/cr4/efer from a vCPU's captured register map ("0x..." strings). */
export function x86PagingRegs(registers: Record<string, string>, cpu: number): X86PagingRegs {
  const get = (name: string): bigint => {
    const v = registers[name];
    if (v === undefined || !/^0x[0-9a-fA-F]{1,16}$/.test(v)) throw new VmpmError(`vCPU ${cpu} has no ${name} register in this bundle; cannot walk its page tables`);
    return BigInt(v);
  };
  return { cr0: get('cr0'), cr3: get('cr3'), cr4: get('cr4'), efer: get('efer') };
}
