/**
 * Parser for QEMU 7.2 HMP `info mtree -f`: the rendered FlatView of every address space, e.g.
 *
 *   FlatView #1
 *    AS "memory", root: system
 *    AS "cpu-memory-0", root: system
 *    Root memory region: system
 *     0000000000100000-0000000003ffffff (prio 0, ram): pc.ram @0000000000100000
 *
 * Several address spaces can share one FlatView; each region is reported once per address space.
 * Printed ends are inclusive; returned ends are exclusive (an end of 2^64 is possible). Under KVM a
 * region line ends with the accelerator name (" KVM"), which is not part of the region name.
 */
import { VmpmError } from '../../util/errors';

export interface FlatRegion {
  addressSpace: string;
  name: string;
  /** ram, rom, romd, ramd, i/o, nv-ram ... as QEMU prints it. A read-only view of RAM prints "rom". */
  kind: string;
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /** Offset into the target memory region (`@...`), when printed (QEMU omits it when zero). */
  offset?: bigint;
  priority?: number;
}

export interface RamRange {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  name: string;
  /** Offset of `start` inside the RAM block (memory region) `name`. */
  blockOffset: bigint;
}

const REGION_LINE =
  /^ +([0-9a-f]{1,16})-([0-9a-f]{1,16}) \(prio (-?\d+), ([a-z/-]+)\): (.+?)(?: @([0-9a-f]{1,16}))?(?: (KVM|HVF|WHPX|NVMM|Xen))?$/;
const FLATVIEW_LINE = /^FlatView #\d+$/;
const AS_LINE = /^ AS "(.*)", root: /;

const MAX_QUOTE = 120;
const quote = (s: string): string => JSON.stringify(s.length > MAX_QUOTE ? `${s.slice(0, MAX_QUOTE)}...` : s);

/** Parses `info mtree -f` output into regions of every address space, in printed order. */
export function parseMtreeFlat(text: string): FlatRegion[] {
  const lines = text.split(/\r?\n/);
  const regions: FlatRegion[] = [];
  let spaces: string[] = [];
  let inHeader = false;
  let sawFlatView = false;
  lines.forEach((line, i) => {
    if (FLATVIEW_LINE.test(line)) {
      spaces = [];
      inHeader = true;
      sawFlatView = true;
      return;
    }
    const as = AS_LINE.exec(line);
    if (as) {
      if (!inHeader) throw new VmpmError(`info mtree -f: line ${i + 1}: address space outside a FlatView header: ${quote(line)}`);
      spaces.push(as[1]!);
      return;
    }
    if (/^ +[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const m = REGION_LINE.exec(line);
      if (!m) {
        throw new VmpmError(
          `info mtree -f: line ${i + 1} is malformed: ${quote(line)} (expected "start-end (prio N, kind): name [@offset]")`,
        );
      }
      if (!sawFlatView) throw new VmpmError(`info mtree -f: line ${i + 1}: region before any "FlatView #n" header`);
      inHeader = false;
      const start = BigInt(`0x${m[1]}`);
      const last = BigInt(`0x${m[2]}`);
      if (last < start) throw new VmpmError(`info mtree -f: line ${i + 1}: region ends before it starts: ${quote(line)}`);
      for (const addressSpace of spaces) {
        const region: FlatRegion = { addressSpace, name: m[5]!, kind: m[4]!, start, end: last + 1n, priority: Number(m[3]) };
        if (m[6] !== undefined) region.offset = BigInt(`0x${m[6]}`);
        regions.push(region);
      }
      return;
    }
    // "Root memory region: ...", "No rendered FlatView", blank lines: nothing to record.
  });
  if (!sawFlatView) {
    const first = lines.find((l) => l.trim() !== '');
    throw new VmpmError(
      first === undefined
        ? 'info mtree -f: empty output, expected "FlatView #n" sections'
        : `info mtree -f: no "FlatView #n" section in the output; first line is ${quote(first)}`,
    );
  }
  return regions;
}

/** Kinds that are guest RAM when seen in the "memory" address space. ramd (device RAM) is not. */
const RAM_KINDS = new Set(['ram', 'nv-ram']);

/**
 * The guest RAM of the "memory" address space, as ranges at their guest-physical addresses, merged
 * when contiguous both in physical address and in offset inside the same RAM block.
 *
 * Read-only views of a RAM block count as RAM: after SeaBIOS runs, pc.ram at 0xc3000-0xe7fff and
 * 0xf0000-0xfffff is printed as "rom" (the BIOS write-protected its shadow copy), yet the bytes are
 * pc.ram's own contents and belong in the capture. A "rom" region is taken as RAM exactly when the
 * same name is also mapped as "ram" in that address space; true ROMs (pc.bios, pc.rom, flash) are not.
 */
export function ramRanges(regions: readonly FlatRegion[]): RamRange[] {
  const memory = regions.filter((r) => r.addressSpace === 'memory');
  const ramNames = new Set(memory.filter((r) => RAM_KINDS.has(r.kind)).map((r) => r.name));
  const ram = memory
    .filter((r) => RAM_KINDS.has(r.kind) || (r.kind === 'rom' && ramNames.has(r.name)))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: RamRange[] = [];
  for (const r of ram) {
    const blockOffset = r.offset ?? 0n;
    const prev = out[out.length - 1];
    if (prev && prev.name === r.name && prev.end === r.start && prev.blockOffset + (prev.end - prev.start) === blockOffset) {
      prev.end = r.end;
    } else {
      out.push({ start: r.start, end: r.end, name: r.name, blockOffset });
    }
  }
  return out;
}
