/**
 * VMCOREINFO without `-device vmcoreinfo`: Linux keeps the text in RAM whatever QEMU is told. At boot
 * crash_save_vmcoreinfo_init() (kernel/crash_core.c) writes it into a zeroed page of its own
 * (vmcoreinfo_data, starting "OSRELEASE=") and copies it as an ELF note into another page-aligned buffer
 * (vmcoreinfo_note: a 12-byte note header, the name "VMCOREINFO\0" padded to 12, then the text); a panic
 * appends CRASHTIME to both. So a candidate is a captured page whose first bytes are "OSRELEASE=", or
 * whose bytes 12..23 are that note name followed by it.
 *
 * Text that merely looks right is not enough (a page cache copy, a previous kernel's page): a candidate
 * is used only when the kernel image it describes is really there: init_uts_ns, mapped through the
 * addresses the text itself gives, must hold "Linux" and the same release string. Among valid
 * candidates the one with CRASHTIME (written at the panic) wins.
 */
import { describeError } from '../../util/errors';
import { toHex } from '../../util/hex';
import type { PhysicalMemory } from '../memory';
import { kernelImageMemory } from './kernel-memory';
import { MAX_VMCOREINFO_TEXT, Vmcoreinfo } from './vmcoreinfo';

const OSRELEASE = Buffer.from('OSRELEASE=');
const NOTE_NAME = Buffer.from('VMCOREINFO\0\0');
/** struct new_utsname: six fields of __NEW_UTS_LEN + 1 = 65 bytes; sysname first, release third. */
const UTS_FIELD = 65;
/** Candidates examined at most (each costs a parse and a few reads). */
const MAX_CANDIDATES = 64;

export interface PageSource {
  dataPages(): AsyncIterable<{ addr: bigint; data: Buffer }>;
}

export interface ScanResult {
  info: Vmcoreinfo | undefined;
  /** Pages that looked like VMCOREINFO but were rejected, and why (for a useful error). */
  rejected: Array<{ phys: bigint; why: string }>;
  pagesScanned: number;
}

/** Scans the captured non-zero pages for the kernel's VMCOREINFO text and validates each candidate. */
export async function scanForVmcoreinfo(mem: PhysicalMemory, pages: PageSource): Promise<ScanResult> {
  const rejected: ScanResult['rejected'] = [];
  const valid: Vmcoreinfo[] = [];
  let pagesScanned = 0;
  for await (const page of pages.dataPages()) {
    pagesScanned++;
    let at: number;
    if (page.data.subarray(0, OSRELEASE.length).equals(OSRELEASE)) at = 0;
    else if (page.data.subarray(12, 24).equals(NOTE_NAME) && page.data.subarray(24, 24 + OSRELEASE.length).equals(OSRELEASE)) at = 24;
    else continue;
    if (rejected.length + valid.length >= MAX_CANDIDATES) break;
    const phys = page.addr + BigInt(at);
    const checked = await candidate(mem, phys);
    if (typeof checked === 'string') rejected.push({ phys, why: checked });
    else {
      valid.push(checked);
      if (checked.crashTime !== undefined) break;
    }
  }
  const info = valid.find((v) => v.crashTime !== undefined) ?? valid[0];
  return { info, rejected, pagesScanned };
}

/** The text at `phys` if it parses and describes the kernel image really in memory, else why not. */
async function candidate(mem: PhysicalMemory, phys: bigint): Promise<Vmcoreinfo | string> {
  // The text ends at its NUL; it may run into the next page on 64 KiB-page kernels, hence the larger read.
  let bytes: Buffer;
  try {
    bytes = await mem.read(phys, Math.min(MAX_VMCOREINFO_TEXT, Number(4096n - (phys % 4096n))));
  } catch (err) {
    return describeError(err);
  }
  const nul = bytes.indexOf(0);
  let info: Vmcoreinfo;
  try {
    info = Vmcoreinfo.parse(nul >= 0 ? bytes.subarray(0, nul) : bytes, { kind: 'ram', phys });
  } catch (err) {
    return describeError(err);
  }
  return (await validateAgainstImage(mem, info)) ?? info;
}

/**
 * undefined when init_uts_ns, read through the kernel-image map the text describes, holds "Linux" and
 * the text's OSRELEASE; else what did not match.
 */
export async function validateAgainstImage(mem: PhysicalMemory, info: Vmcoreinfo): Promise<string | undefined> {
  try {
    const release = info.raw('OSRELEASE');
    const uts = info.symbol('init_uts_ns') + BigInt(info.offsetIfAny('uts_namespace.name') ?? 0);
    const image = kernelImageMemory(info, mem);
    const name = await image.read(uts, UTS_FIELD * 3);
    const field = (i: number): string => {
      const f = name.subarray(i * UTS_FIELD, (i + 1) * UTS_FIELD);
      const end = f.indexOf(0);
      return f.subarray(0, end >= 0 ? end : f.length).toString('latin1');
    };
    if (field(0) !== 'Linux') return `init_uts_ns at ${toHex(uts)} does not hold "Linux" (found ${JSON.stringify(field(0).slice(0, 20))})`;
    if (field(2) !== release) return `init_uts_ns at ${toHex(uts)} holds release ${JSON.stringify(field(2).slice(0, 64))}, the text says ${release}`;
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}
