/**
 * `redact --virt START-END [--cpu N]`: a guest-virtual range resolved to the guest-physical pages
 * that back it, through the page tables of one vCPU (src/guestos/linux: x86-64 4/5-level, aarch64).
 * Unmapped pages, and mapped pages whose frame was not captured, hold nothing to erase: they are
 * counted, not refused (a process's range is rarely mapped end to end).
 */
import { SECTION, type BundleReader, type CpusSection } from '../bundle';
import { bundlePhysicalMemory, vmcoreinfoFromBundle } from '../guestos';
import { vcpuAddressSpace } from '../guestos/linux/address-space';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import type { Interval } from './intervals';

/** Pages translated one by one: bound the work (and the interval list) a single request can cause. */
export const MAX_VIRT_BYTES = 4n << 30n;
const PAGE = 4096n;

export interface VirtualResolution {
  physical: Interval[];
  description: string;
  mappedPages: number;
  unmappedPages: number;
  uncapturedPages: number;
}

export async function resolveVirtual(src: BundleReader, start: bigint, end: bigint, cpu: number | undefined): Promise<VirtualResolution> {
  if (end - start > MAX_VIRT_BYTES) throw new VmpmError(`--virt ${toHex(start)}-${toHex(end)} is over ${MAX_VIRT_BYTES >> 30n} GiB; give smaller ranges`);
  const cpus = src.has(SECTION.cpus) ? ((await src.json<CpusSection>(SECTION.cpus)).cpus ?? []) : [];
  if (cpus.length === 0) throw new VmpmError(`${src.path} has no vCPU registers: no page tables to resolve --virt with`);
  const c = cpu === undefined ? cpus[0]! : cpus.find((x) => x.index === cpu);
  if (!c) throw new VmpmError(`--cpu ${cpu}: no such vCPU in ${src.path} (vCPUs: ${cpus.map((x) => x.index).join(', ')})`);
  const memory = bundlePhysicalMemory({ path: src.path, ranges: () => src.ranges(), read: (a, n) => src.read(a, n) });
  const space = vcpuAddressSpace(memory, c, await vmcoreinfoFromBundle(src));
  const out: VirtualResolution = { physical: [], description: space.description, mappedPages: 0, unmappedPages: 0, uncapturedPages: 0 };
  for (let at = start; at < end; ) {
    const t = await space.translate(at);
    if (t.phys === undefined || t.pageSize === undefined) {
      out.unmappedPages++;
      at = (at & ~(PAGE - 1n)) + PAGE;
      continue;
    }
    const pageEnd = (at & ~(t.pageSize - 1n)) + t.pageSize;
    const stop = pageEnd < end ? pageEnd : end;
    const phys = { start: t.phys, end: t.phys + (stop - at) };
    // Count per 4 KiB page so a 2 MiB mapping reports 512 pages, as a user would count them.
    const pages = Number((stop - at + PAGE - 1n) / PAGE);
    if (src.pageDigest(t.phys) === undefined) out.uncapturedPages += pages;
    else {
      out.mappedPages += pages;
      const last = out.physical[out.physical.length - 1];
      if (last && last.end === phys.start) last.end = phys.end;
      else out.physical.push(phys);
    }
    at = stop;
  }
  return out;
}
