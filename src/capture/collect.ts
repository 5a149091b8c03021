/**
 * The metadata phase: everything read from QEMU that does not need the guest stopped (identity,
 * memory map, block devices, vCPU thread ids), read BEFORE vmpm's stop so the pause holds only the
 * register read and the memory method's start. The memory map is read again after the memory phase
 * (outside the pause) when the guest was running: a map that changed meanwhile is reported.
 */
import { SECTION, type BlockSection, type MemoryMethod } from '../bundle/schema';
import type { BundleWriter } from '../bundle';
import { collectBlock, collectIdentity, collectMemoryInfo, queryCpusFast, type CpuFast, type Identity, type MemoryInfo } from './metadata';
import { planCaptureRanges, type CaptureRange } from './plan';
import type { CaptureRun } from './run';

export interface Metadata {
  identity: Identity;
  mem: MemoryInfo;
  block: { section: BlockSection; rawDevices: unknown[] };
  cpusFast: CpuFast[];
  /** The guest-physical ranges to capture (empty for method `none`). */
  plan: CaptureRange[];
}

/** `uuid`: the guest's UUID as the survey read it (readGuestUuid), not asked again. */
export async function collectMetadata(run: CaptureRun, writer: BundleWriter, method: MemoryMethod, uuid: string | null): Promise<Metadata> {
  const { client, warnings } = run;
  const identity = await collectIdentity(client, warnings, uuid);
  const cpusFast = await queryCpusFast(client, warnings);
  const mem = await collectMemoryInfo(client, warnings);
  const block = await collectBlock(client, warnings);
  await writer.addJsonSection(SECTION.block, block.section);
  return { identity, mem, block, cpusFast, plan: method === 'none' ? [] : planCaptureRanges(mem.regions) };
}

/**
 * The memory map was read before the stop; if the guest was running then, it is read again now and a
 * change is reported (pages were placed by the first reading). The second reading costs one HMP
 * round trip outside the pause.
 */
export async function recheckMemoryMap(run: CaptureRun, meta: Metadata, wasRunning: boolean): Promise<void> {
  if (!wasRunning || meta.plan.length === 0) return;
  const raw = await run.client.hmp('info mtree -f');
  if (raw !== meta.mem.raw) run.warnings.push('the memory map (info mtree -f) changed between its reading before the stop and the end of the memory capture; the memmap section holds the first reading');
}
