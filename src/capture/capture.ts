/**
 * The capture orchestrator: quiesce per policy, collect metadata, stream RAM, restore the run state,
 * write every section, finish the bundle. On any failure: one-line VmpmError, no complete-looking file
 * (a `*.partial.vmpm` only with keepPartial), FIFOs removed, run state restored while QEMU lives.
 */
import { rename } from 'node:fs/promises';
import {
  ATTACHMENT_PREFIX,
  SECTION,
  type CaptureAction,
  type ErrorRecord,
  type JournalEvent,
  type MemmapSection,
  type MemoryMethod,
  type QuiescePolicy,
  type RunState,
  type Manifest,
  type ManifestTransport,
} from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { roundMs } from '../util/time';
import { ActionLog } from './actions';
import { CaptureError, classifyCaptureFailure } from './capture-error';
import { collectErrorRecords, mergeJournal, runStateReason } from './evidence';
import { createFifoDir, type FifoDir } from './fifo';
import { buildManifest, partialManifest } from './manifest';
import { captureWithDump } from './memory-dump';
import type { MemoryCaptureContext, MemoryCaptureResult } from './memory-common';
import { captureWithPmemsave } from './memory-pmemsave';
import { collectBlock, collectCpus, collectIdentity, collectMemoryInfo, hexOrNull, queryStatus, queryStatusDetailed, type LibvirtStatus } from './metadata';
import { captureWithSnapshot, SnapshotSettings } from './memory-snapshot';
import { chooseMemoryMethod, type RequestedMemoryMethod } from './snapshot-choice';
import { snapshotSection } from './snapshot-section';
import { openOutput, readAttachments, sealPartial } from './output';
import { parseElfNotes, vmcoreinfoFromNotes } from '../formats/elf';
import { describeRegions, planCaptureRanges } from './plan';
import { decideResume, shouldStop, vmpmStoppedIt } from './policy';
import { buildSummary, type CaptureSummary } from './summary';

export { partialPathFor } from './output';

export interface CaptureOptions {
  output: string;
  overwrite?: boolean;
  quiesce: QuiescePolicy;
  /** 'auto': a background snapshot for a running guest under stop-and-restore when QEMU can, else dump. */
  memory: RequestedMemoryMethod;
  attachments?: Array<{ name: string; path: string }>;
  label?: string;
  /** On failure keep what was written as `<output>.partial.vmpm` (clearly not a complete bundle). */
  keepPartial?: boolean;
  origin?: 'capture' | 'watch';
  trigger?: ErrorRecord;
  journal?: JournalEvent[];
  journalDropped?: number;
  /** State changes already made by the caller (e.g. the `stop` watch sent the moment an event came). */
  priorActions?: CaptureAction[];
  signal?: AbortSignal;
  onProgress?: (p: { phase: string; done?: number; total?: number }) => void;
  /** Bound on QEMU opening a memory FIFO (default 10 s). */
  fifoOpenTimeoutMs?: number;
  /** Bound on QEMU's silence while it streams memory into a FIFO (default 60 s). */
  fifoIdleTimeoutMs?: number;
  /** zstd level for memory frames (default: the bundle writer's, 3). */
  level?: number;
  /**
   * Set when the QMP socket belongs to a QEMU that libvirt runs (the evidence, from src/libvirt):
   * `dump` then becomes `pmemsave`, because QEMU's dump-guest-memory behind libvirt's back crashed
   * libvirtd 9.0 (issue 15). The session's guard refuses the command as well.
   */
  libvirtOwned?: string;
}

export interface CaptureResult {
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  summary: CaptureSummary;
}

export async function capture(client: QmpClient, options: CaptureOptions): Promise<CaptureResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (phase: string, since: number): void => {
    timings[phase] = roundMs(performance.now() - since);
  };
  const phase = (name: string, done?: number, total?: number): void => {
    currentPhase = name;
    const p: { phase: string; done?: number; total?: number } = { phase: name };
    if (done !== undefined) p.done = done;
    if (total !== undefined) p.total = total;
    options.onProgress?.(p);
  };
  let currentPhase = 'start';
  const warnings: string[] = [];
  const actions = new ActionLog(options.priorActions ?? []);
  const createdAt = new Date().toISOString();
  const policy = options.quiesce;
  let method: MemoryMethod = options.memory === 'auto' ? 'dump' : options.memory;
  const signal = options.signal;
  const checkAbort = (): void => {
    if (signal?.aborted) throw new VmpmError('capture interrupted');
  };

  // Attachments and the output file are checked before anything touches the guest.
  const attachments = await readAttachments(options.attachments ?? []);
  const out = await openOutput(options);
  const { writer, target } = out;

  let fifoDir: FifoDir | undefined;
  let snapshotSettings: SnapshotSettings | undefined;
  let stoppedHere = false;
  /** vmpm stopped the guest: here, or the caller (watch's immediate `stop`) before. */
  const vmpmStopped = (): boolean => stoppedHere || vmpmStoppedIt(options.priorActions ?? []);
  let stopAt: number | undefined;
  let before: RunState | undefined;
  let resumedAt: number | undefined;
  let transport: ManifestTransport | undefined;
  try {
    checkAbort();
    phase('quiesce');
    const tStop = performance.now();
    const beforeDetailed = await queryStatusDetailed(client);
    before = beforeDetailed.state;
    transport = transportOf(client.endpoint, beforeDetailed.libvirt, options.libvirtOwned);
    for (const w of beforeDetailed.libvirt?.readiness ?? []) warnings.push(`libvirt domain: ${w}`);
    // QEMU started with -S and never continued: nothing to stop or resume, but the reader should know
    // the guest never ran (RAM holds only what QEMU and its loaders put there).
    if (before.status === 'prelaunch') warnings.push('the guest has not started yet (QEMU -S, run state prelaunch): this is its state before its first instruction');
    // A migration behind libvirt's back would confuse it (as dump-guest-memory crashed it): no snapshot there.
    const snapshotVeto =
      transport.kind === 'libvirt' ? 'QEMU is reached through libvirt' : options.libvirtOwned !== undefined ? `QEMU is run by libvirt (${options.libvirtOwned})` : undefined;
    method = await chooseMemoryMethod(client, options.memory, policy, before, warnings, snapshotVeto);
    if (options.libvirtOwned !== undefined && method === 'dump') {
      method = 'pmemsave';
      warnings.push(`QEMU is run by libvirt (${options.libvirtOwned}): memory via pmemsave; vmpm never sends it dump-guest-memory (it crashed libvirtd 9.0). --libvirt DOMAIN uses libvirt's own dump`);
    }
    if (method === 'snapshot') {
      snapshotSettings = await SnapshotSettings.apply(client, actions, warnings);
      fifoDir = await createFifoDir(); // now, not in the pause (mkdtemp took ~30 ms under load)
    }
    if (shouldStop(policy, before)) {
      await actions.run('stop', `guest was ${before.status}; policy ${policy}`, () => client.execute('stop'));
      stoppedHere = true;
      stopAt = performance.now();
    }
    mark('stop', tStop);

    phase('metadata');
    const tMeta = performance.now();
    const identity = await collectIdentity(client, warnings);
    const cpus = await collectCpus(client, identity.arch, warnings);
    const mem = await collectMemoryInfo(client, warnings);
    const block = await collectBlock(client, warnings);
    const plan = method === 'none' ? [] : planCaptureRanges(mem.regions);
    await writer.addJsonSection(SECTION.cpus, cpus);
    await writer.addJsonSection(SECTION.block, block.section);
    mark('metadata', tMeta);
    checkAbort();

    let memory: MemoryCaptureResult = { ranges: [] };
    if (method !== 'none') {
      phase('memory', 0, Number(plan.reduce((s, r) => s + (r.end - r.start), 0n)));
      const tMem = performance.now();
      fifoDir ??= await createFifoDir();
      const ctx: MemoryCaptureContext = {
        client,
        writer,
        plan,
        fifoDir: fifoDir.path,
        actions,
        warnings,
        onProgress: (done, total) => phase('memory', done, total),
      };
      if (signal) ctx.signal = signal;
      if (transport?.kind === 'libvirt') ctx.viaLibvirt = true;
      if (options.fifoOpenTimeoutMs !== undefined) ctx.fifoOpenTimeoutMs = options.fifoOpenTimeoutMs;
      if (options.fifoIdleTimeoutMs !== undefined) ctx.fifoIdleTimeoutMs = options.fifoIdleTimeoutMs;
      if (policy === 'no-stop' && before.running && method === 'dump') {
        warnings.push('dump-guest-memory pauses a running guest by itself while it dumps; registers were read before');
      }
      memory = method === 'dump' ? await captureWithDump(ctx) : method === 'snapshot' && snapshotSettings ? await captureWithSnapshot(ctx, snapshotSettings) : await captureWithPmemsave(ctx);
      mark('memory', tMem);
      // A background snapshot resumes the guest itself, milliseconds after vmpm's stop.
      if (memory.resumedAt !== undefined && stopAt !== undefined) {
        resumedAt = memory.resumedAt;
        timings.paused = roundMs(resumedAt - stopAt);
      }
      if (memory.snapshot) {
        if (memory.snapshot.downtimeMs !== null) timings.snapshotDowntime = memory.snapshot.downtimeMs;
        await writer.addJsonSection(SECTION.snapshot, snapshotSection(memory.snapshot, cpus, warnings));
      }
    }
    checkAbort();

    phase('restore');
    const tRestore = performance.now();
    const restored = await restoreRunState(client, policy, vmpmStopped(), actions, warnings, 'restoring the run state vmpm found');
    if (restored.resumedAt !== undefined) {
      resumedAt = restored.resumedAt;
      if (stopAt !== undefined) timings.paused = roundMs(resumedAt - stopAt);
    }
    const resumed = restored.resumedAt !== undefined;
    const now = restored.now;
    const after = resumed ? await queryStatus(client) : now;
    mark('restore', tRestore);

    phase('finish');
    const tFinish = performance.now();
    const captured = memory.ranges.map((r) => ({ start: r.start, end: r.start + r.length }));
    const memmap: MemmapSection = {
      regions: describeRegions(mem.regions, captured),
      sizeSummary: mem.sizeSummary
        ? { baseMemory: toHex(mem.sizeSummary.baseMemory), pluggedMemory: hexOrNull(mem.sizeSummary.pluggedMemory) }
        : null,
      memdevs: mem.memdevs,
      memoryDevices: mem.memoryDevices,
      raw: mem.raw,
    };
    await writer.addJsonSection(SECTION.memmap, memmap);

    const journal = mergeJournal(options.journal ?? [], client.bufferedEvents());
    const records = collectErrorRecords({ trigger: options.trigger, journal, before, blockDevices: block.rawDevices });
    before.reason ??= runStateReason(before, records);
    after.reason ??= runStateReason(after, records);
    await writer.addJsonSection(SECTION.errors, { records });
    await writer.addJsonSection(SECTION.events, { events: journal, dropped: (options.journalDropped ?? 0) + client.droppedEvents() });
    await writer.addJsonSection(SECTION.transcript, { endpoint: client.endpoint, entries: client.transcript() });
    for (const a of attachments) await writer.addRawSection(`${ATTACHMENT_PREFIX}${a.name}`, a.data);
    if (memory.elfNotes) {
      await writer.addRawSection(SECTION.elfNotes, memory.elfNotes.data);
      try {
        const vmcoreinfo = vmcoreinfoFromNotes(parseElfNotes(memory.elfNotes.data, memory.elfNotes.info.byteOrder === 'little'));
        if (vmcoreinfo !== undefined) await writer.addRawSection(SECTION.vmcoreinfo, Buffer.from(vmcoreinfo, 'utf8'));
      } catch (err) {
        warnings.push(`ELF notes not parsed: ${describeError(err)}`);
      }
    }

    const ramSize = mem.sizeSummary ? mem.sizeSummary.baseMemory + (mem.sizeSummary.pluggedMemory ?? 0n) : null;
    mark('finish', tFinish);
    timings.total = roundMs(performance.now() - t0);
    const manifestInput: Parameters<typeof buildManifest>[0] = {
      createdAt,
      origin: options.origin ?? 'capture',
      capabilities: client.greeting.capabilities ?? null,
      identity,
      cpuCount: cpus.cpus.length,
      ramSize,
      before,
      after,
      policy,
      memory: method,
      actions: actions.actions,
      timings,
      warnings,
    };
    if (options.label !== undefined) manifestInput.label = options.label;
    if (options.trigger) manifestInput.trigger = options.trigger;
    if (memory.elfNotes) manifestInput.elfNotes = memory.elfNotes.info;
    if (transport) manifestInput.transport = transport;
    const manifest: Manifest = buildManifest(manifestInput);
    await writer.addJsonSection(SECTION.manifest, manifest);
    const finished = await writer.finish();
    let path = finished.path ?? target;
    if (options.keepPartial) {
      await rename(path, options.output);
      path = options.output;
    }
    const durationMs = Math.round(performance.now() - t0);
    const sum = (f: (r: MemoryCaptureResult['ranges'][number]) => number): number => memory.ranges.reduce((s, r) => s + f(r), 0);
    const summary = buildSummary({
      manifest,
      file: { path, sha256: finished.sha256, size: finished.size },
      memory: {
        ranges: memory.ranges.length,
        ramCapturedBytes: sum((r) => Number(r.length)),
        pages: sum((r) => r.pages),
        zeroPages: sum((r) => r.zeroPages),
        storedPages: sum((r) => r.storedPages),
        dedupPages: sum((r) => r.dedupPages),
      },
      cpus: cpus.cpus.length,
      errorRecords: records.length,
      durationMs,
    });
    return { path, sha256: finished.sha256, size: finished.size, manifest, summary };
  } catch (err) {
    await snapshotSettings?.restore(warnings);
    const failure = new CaptureError({
      phase: currentPhase,
      kind: classifyCaptureFailure(err, client.closed, signal?.aborted === true),
      detail: describeError(err),
      // The one run-state restore after a failure; the success path restores in its own phase.
      leftStopped: await restoreAfterFailure(client, policy, vmpmStopped(), actions, warnings),
      cause: err,
    });
    if (options.keepPartial) {
      const partial: Parameters<typeof partialManifest>[0] = {
        createdAt,
        origin: options.origin ?? 'capture',
        reason: failure.message,
        before,
        policy,
        memory: method,
        actions: actions.actions,
        warnings,
      };
      if (options.label !== undefined) partial.label = options.label;
      await sealPartial(out, partialManifest(partial));
    } else {
      await writer.abort();
    }
    throw failure;
  } finally {
    await fifoDir?.remove().catch(() => undefined);
  }
}

/**
 * The one run-state restore, for the success and the failure path: a guest vmpm stopped goes back to
 * running when the policy says so and it is still merely paused. A refused or failed `cont` leaves it
 * stopped (with a warning) and is returned as `notResumed`; it never fails the capture. `now` is the
 * status before any `cont`; undefined when QEMU could not be asked.
 */
async function restoreRunState(
  client: QmpClient,
  policy: QuiescePolicy,
  stoppedByVmpm: boolean,
  actions: ActionLog,
  warnings: string[],
  why: string,
  timeoutMs?: number,
): Promise<{ now: RunState; resumedAt?: number; notResumed?: string }> {
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  const now = await queryStatus(client, opts);
  if (!decideResume(policy, stoppedByVmpm, now).resume) return { now };
  try {
    await actions.run('cont', why, () => client.execute('cont', undefined, opts));
    return { now, resumedAt: performance.now() };
  } catch (err) {
    warnings.push(`could not resume the guest vmpm stopped (${describeError(err)}); it is left stopped`);
    return { now, notResumed: `could not resume it: ${describeError(err)}` };
  }
}

/** After a failure: restores while QEMU still answers; returns why a guest vmpm stopped is still stopped. */
async function restoreAfterFailure(
  client: QmpClient,
  policy: QuiescePolicy,
  stoppedByVmpm: boolean,
  actions: ActionLog,
  warnings: string[],
): Promise<string | undefined> {
  if (!stoppedByVmpm || policy !== 'stop-and-restore') return undefined;
  // The monitor went away, not necessarily QEMU: the guest vmpm stopped may well still be stopped.
  if (client.closed) return 'the QMP connection is gone, so vmpm could not resume it; `vmpm state` tells, `vmpm qmp ... cont --allow cont` resumes';
  try {
    const r = await restoreRunState(client, policy, true, actions, warnings, 'restoring the run state after a failed capture', 5000);
    return r.notResumed;
  } catch (err) {
    warnings.push(`could not restore the run state: ${describeError(err)}`);
    return `could not resume it: ${describeError(err)}`;
  }
}

/** How the session reached QEMU, for the manifest: libvirt (with its facts from query-status) or a QMP socket. */
function transportOf(endpoint: string, libvirt: LibvirtStatus | undefined, libvirtOwned: string | undefined): ManifestTransport {
  if (libvirt !== undefined) {
    const { domain, uuid, uri, libvirtVersion, qemuVersion } = libvirt;
    return { kind: 'libvirt', endpoint, libvirt: { domain, uuid, uri, libvirtVersion, qemuVersion } };
  }
  const t: ManifestTransport = { kind: 'qmp', endpoint };
  if (libvirtOwned !== undefined) t.libvirtOwned = libvirtOwned;
  return t;
}
