/**
 * The capture orchestrator, one function per phase:
 *   quiesce  (survey.ts)     the run state found, the guest's UUID (into the claim before any
 *                            change), the transport, the memory method; a snapshot's settings and
 *                            socket made ready while the guest still runs
 *   metadata (collect.ts)    identity, memory map, block devices, vCPU threads: before any stop
 *   stop     (quiesce.ts)    `stop` per policy, then the registers, the only read inside the stop;
 *                            an x86 snapshot sends only `migrate` (QEMU stops the guest itself and
 *                            the registers come from the stream: stream-registers.ts)
 *   memory   (memory-phase)  RAM into the bundle (a background snapshot resumes the guest itself)
 *   restore  (quiesce.ts)    the memory map checked again, the run state vmpm found restored
 *   finish   (finish.ts)     the remaining sections, the manifest, the trailer, the summary
 * On any failure (failure.ts): one CaptureError, no complete-looking file (a `*.partial.vmpm` only
 * with keepPartial), the run state restored by the same restore while QEMU lives; the FIFO
 * directory is removed in one place (CaptureRun.dispose).
 */
import { SECTION } from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { collectMetadata, recheckMemoryMap } from './collect';
import { failCapture } from './failure';
import { finishBundle, type CaptureResult } from './finish';
import { captureMemory } from './memory-phase';
import { queryStatus } from './metadata';
import type { MemoryCaptureResult } from './memory-common';
import { openOutput, readAttachments } from './output';
import { restoreRunState, startSnapshotWithoutStop, stopAndReadRegisters } from './quiesce';
import { cpusFromStream } from './stream-registers';
import { CaptureRun, type CaptureOptions } from './run';
import { survey, type Survey } from './survey';

export { partialPathFor } from './output';
export type { CaptureOptions } from './run';
export type { CaptureResult } from './finish';

export async function capture(client: QmpClient, options: CaptureOptions): Promise<CaptureResult> {
  const run = new CaptureRun(client, options);
  // Attachments and the output file are checked before anything touches the guest.
  const prepared = await (async () => [await readAttachments(options.attachments ?? []), await openOutput(options)] as const)().catch(async (err: unknown) => {
    await run.dispose(); // the claim of a stop watch sent before, and the event subscription
    throw err;
  });
  const [attachments, out] = prepared;
  const { writer } = out;
  let found: Survey | undefined;
  try {
    run.checkAbort();
    const f = (found = await run.step('quiesce', 'survey', () => survey(run)));
    const meta = await run.step('metadata', 'metadata', () => collectMetadata(run, writer, f.method, f.uuid));
    run.checkAbort();
    const snap = f.snapshot;
    const migrate = snap ? () => snap.start() : undefined;
    // x86 snapshot: no vmpm stop; the registers come from the stream (QEMU's own stop).
    const fromStream = snap !== undefined && meta.identity.arch === 'x86_64';
    const read = fromStream
      ? await run.step('stop', 'stop', () => startSnapshotWithoutStop(run, snap.start.bind(snap))).then(() => undefined)
      : await run.step('stop', 'stop', () => stopAndReadRegisters(run, f.before, meta.identity.arch, meta.cpusFast, migrate));
    // A snapshot starts the moment the registers are read: its cpus section waits until after.
    if (f.method !== 'snapshot' && read) await writer.addJsonSection(SECTION.cpus, read);
    let memory: MemoryCaptureResult = { ranges: [] };
    if (f.method !== 'none') memory = await run.step('memory', 'memory', () => captureMemory(run, writer, f, meta, read));
    const cpus = read ?? cpusFromStream(memory.snapshot?.vmstateCpus, memory.snapshot?.vmstateError, meta.cpusFast);
    if (f.method === 'snapshot') await writer.addJsonSection(SECTION.cpus, cpus);
    run.checkAbort();
    const after = await run.step('restore', 'restore', async () => {
      await recheckMemoryMap(run, meta, f.before.running);
      const restored = await restoreRunState(client, run.policy, run.vmpmStopped, run.actions, run.warnings, 'restoring the run state vmpm found');
      // Stop to cont, or to the background snapshot's own resume.
      const paused = run.pausedMs(restored.resumedAt);
      if (paused !== undefined) run.timings.paused = paused;
      return restored.resumedAt !== undefined ? await queryStatus(client) : restored.now;
    });
    return await run.step('finish', undefined, () => finishBundle(run, { writer, target: out.target, found: f, meta, cpus, memory, after, attachments }));
  } catch (err) {
    throw await failCapture(run, out, found, err);
  } finally {
    await run.dispose();
  }
}
