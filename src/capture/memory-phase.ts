/**
 * The memory phase: guest RAM into the bundle by the method the survey chose (dump, pmemsave or a
 * background snapshot). A snapshot resumes the guest itself; the moment it did is returned.
 */
import { SECTION, type CpusSection } from '../bundle/schema';
import type { BundleWriter } from '../bundle';
import type { Metadata } from './collect';
import { captureWithDump } from './memory-dump';
import type { MemoryCaptureContext, MemoryCaptureResult } from './memory-common';
import { captureWithPmemsave } from './memory-pmemsave';
import { captureWithSnapshot } from './memory-snapshot';
import type { CaptureRun } from './run';
import { snapshotSection } from './snapshot-section';
import type { Survey } from './survey';

/** `cpus`: the registers read in vmpm's stop; undefined when they come from the snapshot's stream. */
export async function captureMemory(run: CaptureRun, writer: BundleWriter, found: Survey, meta: Metadata, cpus: CpusSection | undefined): Promise<MemoryCaptureResult> {
  const { options, warnings } = run;
  run.phase('memory', 0, Number(meta.plan.reduce((s, r) => s + (r.end - r.start), 0n)));
  const ctx: MemoryCaptureContext = {
    client: run.client,
    writer,
    plan: meta.plan,
    fifoDir: (await run.fifoDir()).path,
    actions: run.actions,
    warnings,
    onProgress: (done, total) => run.phase('memory', done, total),
  };
  if (options.signal) ctx.signal = options.signal;
  if (found.transport.kind === 'libvirt') ctx.viaLibvirt = true;
  if (options.fifoOpenTimeoutMs !== undefined) ctx.fifoOpenTimeoutMs = options.fifoOpenTimeoutMs;
  if (options.fifoIdleTimeoutMs !== undefined) ctx.fifoIdleTimeoutMs = options.fifoIdleTimeoutMs;
  if (options.snapshotSetupTimeoutMs !== undefined) ctx.snapshotSetupTimeoutMs = options.snapshotSetupTimeoutMs;
  if (run.policy === 'no-stop' && found.before.running && found.method === 'dump') {
    warnings.push('dump-guest-memory pauses a running guest by itself while it dumps; registers were read before');
  }
  let memory: MemoryCaptureResult;
  if (found.method === 'snapshot' && found.snapshot) memory = await captureWithSnapshot(ctx, found.snapshot);
  else if (found.method === 'dump') memory = await captureWithDump(ctx);
  else memory = await captureWithPmemsave(ctx);
  if (memory.snapshot) {
    if (memory.snapshot.downtimeMs !== null) run.timings.snapshotDowntime = memory.snapshot.downtimeMs;
    if (memory.snapshot.setupMs !== null) run.timings.snapshotSetup = memory.snapshot.setupMs;
    await writer.addJsonSection(SECTION.snapshot, snapshotSection(memory.snapshot, cpus, warnings));
  }
  return memory;
}
