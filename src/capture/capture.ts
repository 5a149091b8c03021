/**
 * The capture orchestrator: quiesce per policy, collect metadata, stream RAM, restore the run state,
 * write every section, finish the bundle. On any failure: one-line VmpmError, no complete-looking file
 * (a `*.partial.vmpm` only with keepPartial), FIFOs removed, run state restored while QEMU lives.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { BundleWriter, FORMAT_MAJOR, FORMAT_MINOR } from '../bundle';
import {
  ATTACHMENT_PREFIX,
  SECTION,
  type CaptureAction,
  type ErrorRecord,
  type JournalEvent,
  type Manifest,
  type MemmapSection,
  type MemoryMethod,
  type QuiescePolicy,
  type RunState,
} from '../bundle/schema';
import type { QmpClient } from '../qmp';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { VMPM_VERSION } from '../version';
import { ActionLog } from './actions';
import { collectErrorRecords, mergeJournal, runStateReason } from './evidence';
import { createFifoDir, type FifoDir } from './fifo';
import { captureWithDump } from './memory-dump';
import type { MemoryCaptureContext, MemoryCaptureResult } from './memory-common';
import { captureWithPmemsave } from './memory-pmemsave';
import { collectBlock, collectCpus, collectIdentity, collectMemoryInfo, hexOrNull, queryStatus } from './metadata';
import { parseElfNotes, vmcoreinfoFromNotes } from './parse/elf-notes';
import { describeRegions, planCaptureRanges } from './plan';
import { decideResume, isConsistent, shouldStop, vmpmStoppedIt } from './policy';
import type { CaptureSummary } from './summary';

export interface CaptureOptions {
  output: string;
  overwrite?: boolean;
  quiesce: QuiescePolicy;
  memory: MemoryMethod;
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
  /** zstd level for memory frames (default: the bundle writer's, 3). */
  level?: number;
}

export interface CaptureResult {
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  summary: CaptureSummary;
}

const MAX_ATTACHMENT_BYTES = 256 * 1024 * 1024;

/** `case.vmpm` -> `case.partial.vmpm`: the name says it is not a complete capture. */
export function partialPathFor(output: string): string {
  const base = basename(output);
  const stem = base.endsWith('.vmpm') ? base.slice(0, -'.vmpm'.length) : base;
  return join(dirname(output), `${stem}.partial.vmpm`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function capture(client: QmpClient, options: CaptureOptions): Promise<CaptureResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const mark = (phase: string, since: number): void => {
    timings[phase] = Math.round((performance.now() - since) * 1000) / 1000;
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
  const method = options.memory;
  const signal = options.signal;
  const checkAbort = (): void => {
    if (signal?.aborted) throw new VmpmError('capture interrupted');
  };

  // Attachments are read before anything touches the guest: a bad path must not cost a stop.
  const attachments: Array<{ name: string; data: Buffer }> = [];
  for (const a of options.attachments ?? []) {
    const info = await stat(a.path).catch((err: unknown) => {
      throw new VmpmError(`cannot attach ${a.path}: ${describeError(err)}`);
    });
    if (!info.isFile()) throw new VmpmError(`cannot attach ${a.path}: not a regular file`);
    if (info.size > MAX_ATTACHMENT_BYTES) throw new VmpmError(`cannot attach ${a.path}: ${info.size} bytes is over the 256 MiB limit`);
    attachments.push({ name: a.name, data: await readFile(a.path) });
  }

  const target = options.keepPartial ? partialPathFor(options.output) : options.output;
  if (options.keepPartial && !options.overwrite && (await exists(options.output))) {
    throw new VmpmError(`${options.output} already exists (refusing to overwrite it; choose another name or allow overwriting)`);
  }
  // Created before the guest is stopped: an existing file or unwritable directory fails here.
  const writerOptions: { overwrite: boolean; level?: number } = { overwrite: options.keepPartial ? true : options.overwrite ?? false };
  if (options.level !== undefined) writerOptions.level = options.level;
  const writer = await BundleWriter.create(target, writerOptions).catch((err: unknown) => {
    throw explainCreateFailure(err, target);
  });

  let fifoDir: FifoDir | undefined;
  let stoppedHere = false;
  let stopAt: number | undefined;
  let before: RunState | undefined;
  let resumedAt: number | undefined;
  try {
    checkAbort();
    phase('quiesce');
    const tStop = performance.now();
    before = await queryStatus(client);
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
      fifoDir = await createFifoDir();
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
      if (options.fifoOpenTimeoutMs !== undefined) ctx.fifoOpenTimeoutMs = options.fifoOpenTimeoutMs;
      if (policy === 'no-stop' && before.running && method === 'dump') {
        warnings.push('dump-guest-memory pauses a running guest by itself while it dumps; registers were read before');
      }
      memory = method === 'dump' ? await captureWithDump(ctx) : await captureWithPmemsave(ctx);
      await fifoDir.remove();
      mark('memory', tMem);
    }
    checkAbort();

    phase('restore');
    const tRestore = performance.now();
    const now = await queryStatus(client);
    const decision = decideResume(policy, stoppedHere || vmpmStoppedIt(options.priorActions ?? []), now);
    let resumed = false;
    if (decision.resume) {
      // A refused or failed `cont` must not cost the capture: the guest stays stopped, and the manifest says so.
      try {
        await actions.run('cont', 'restoring the run state vmpm found', () => client.execute('cont'));
        resumedAt = performance.now();
        resumed = true;
      } catch (err) {
        warnings.push(`could not resume the guest vmpm stopped (${describeError(err)}); it is left stopped`);
      }
    }
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
      await writer.addRawSection(SECTION.elfNotes, memory.elfNotes);
      try {
        const vmcoreinfo = vmcoreinfoFromNotes(parseElfNotes(memory.elfNotes, memory.elfLittleEndian ?? true));
        if (vmcoreinfo !== undefined) await writer.addRawSection(SECTION.vmcoreinfo, Buffer.from(vmcoreinfo, 'utf8'));
      } catch (err) {
        warnings.push(`ELF notes not parsed: ${describeError(err)}`);
      }
    }

    const greeting = client.greeting;
    const ramSize = mem.sizeSummary ? mem.sizeSummary.baseMemory + (mem.sizeSummary.pluggedMemory ?? 0n) : null;
    mark('finish', tFinish);
    timings.total = Math.round((performance.now() - t0) * 1000) / 1000;
    const manifest: Manifest = {
      format: { major: FORMAT_MAJOR, minor: FORMAT_MINOR },
      vmpmVersion: VMPM_VERSION,
      createdAt,
      host: { hostname: hostname(), platform: `${process.platform}-${process.arch}`, nodeVersion: process.version },
      origin: options.origin ?? 'capture',
      qemu: {
        version: identity.version,
        package: identity.package,
        capabilities: greeting.capabilities,
      },
      vm: {
        name: identity.name,
        uuid: identity.uuid,
        arch: identity.arch,
        kvm: identity.kvm,
        cpuCount: cpus.cpus.length,
        ramSize: hexOrNull(ramSize),
      },
      runState: { before, after },
      policy: { quiesce: policy, memory: method },
      consistent: isConsistent(policy, before),
      actions: actions.actions,
      timings,
      warnings,
    };
    if (options.label !== undefined) manifest.label = options.label;
    if (options.trigger) manifest.policy.trigger = options.trigger;
    await writer.addJsonSection(SECTION.manifest, manifest);
    const finished = await writer.finish();
    let path = finished.path ?? target;
    if (options.keepPartial) {
      await rename(path, options.output);
      path = options.output;
    }
    const durationMs = Math.round(performance.now() - t0);
    const sum = (f: (r: MemoryCaptureResult['ranges'][number]) => number): number => memory.ranges.reduce((s, r) => s + f(r), 0);
    const summary: CaptureSummary = {
      path,
      sha256: finished.sha256,
      bundleBytes: finished.size,
      vm: { name: identity.name, uuid: identity.uuid, arch: identity.arch },
      stateBefore: before.status,
      stateAfter: after.status,
      consistent: manifest.consistent,
      policy,
      memoryMethod: method,
      cpus: cpus.cpus.length,
      ranges: memory.ranges.length,
      ramCapturedBytes: sum((r) => Number(r.length)),
      pages: sum((r) => r.pages),
      zeroPages: sum((r) => r.zeroPages),
      storedPages: sum((r) => r.storedPages),
      dedupPages: sum((r) => r.dedupPages),
      errorRecords: records.length,
      guestStoppedMs: stopAt !== undefined && resumedAt !== undefined ? Math.round(resumedAt - stopAt) : null,
      durationMs,
      warnings,
    };
    return { path, sha256: finished.sha256, size: finished.size, manifest, summary };
  } catch (err) {
    const message = failureMessage(err, currentPhase, client, signal);
    await fifoDir?.remove().catch(() => undefined);
    await restoreAfterFailure(client, policy, stoppedHere, actions, warnings);
    if (options.keepPartial) {
      await finishPartial(writer, target, { message, before, actions: actions.actions, warnings, createdAt, policy, method, options });
    } else {
      await writer.abort();
    }
    throw new VmpmError(message, { cause: err });
  } finally {
    await fifoDir?.remove().catch(() => undefined);
  }
}

const CREATE_ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a component of its directory is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
};

/** The writer names its temp file; the user needs to hear about the path they asked for. */
function explainCreateFailure(err: unknown, target: string): VmpmError {
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  const text = cause?.code ? CREATE_ERRNO_TEXT[cause.code] : undefined;
  if (text === undefined) return err instanceof VmpmError ? err : new VmpmError(`cannot write ${target}: ${describeError(err)}`);
  return new VmpmError(`cannot write ${target}: ${text} (${dirname(target)})`, { cause: err });
}

function failureMessage(err: unknown, phase: string, client: QmpClient, signal: AbortSignal | undefined): string {
  if (signal?.aborted) return `capture interrupted during ${phase}; nothing complete was written`;
  const what = describeError(err);
  if (client.closed) return `QEMU closed the QMP connection during ${phase} (${what}); capture abandoned`;
  return what.startsWith('capture') ? what : `capture failed during ${phase}: ${what}`;
}

/** Puts a guest vmpm stopped back to running when the policy says so and QEMU still answers. */
async function restoreAfterFailure(
  client: QmpClient,
  policy: QuiescePolicy,
  stoppedHere: boolean,
  actions: ActionLog,
  warnings: string[],
): Promise<void> {
  if (!stoppedHere || policy !== 'stop-and-restore' || client.closed) return;
  try {
    const now = await client.execute<{ status: string; running: boolean }>('query-status', undefined, { timeoutMs: 5000 });
    if (decideResume(policy, true, now).resume) {
      await actions.run('cont', 'restoring the run state after a failed capture', () => client.execute('cont', undefined, { timeoutMs: 5000 }));
    }
  } catch (err) {
    warnings.push(`could not restore the run state: ${describeError(err)}`);
  }
}

interface PartialContext {
  message: string;
  before: RunState | undefined;
  actions: CaptureAction[];
  warnings: string[];
  createdAt: string;
  policy: QuiescePolicy;
  method: MemoryMethod;
  options: CaptureOptions;
}

/**
 * --keep-partial: seal what was written so far under the `.partial.vmpm` name with a manifest that
 * says why it is incomplete. If even that fails (disk full), nothing is left.
 */
async function finishPartial(writer: BundleWriter, target: string, p: PartialContext): Promise<void> {
  try {
    const at = new Date().toISOString();
    const unknown: RunState = { status: 'unknown', running: false, at };
    const manifest: Manifest = {
      format: { major: FORMAT_MAJOR, minor: FORMAT_MINOR },
      vmpmVersion: VMPM_VERSION,
      createdAt: p.createdAt,
      host: { hostname: hostname(), platform: `${process.platform}-${process.arch}`, nodeVersion: process.version },
      origin: p.options.origin ?? 'capture',
      qemu: null,
      vm: { name: null, uuid: null, arch: 'unknown', kvm: null, cpuCount: 0, ramSize: null },
      runState: { before: p.before ?? unknown, after: unknown },
      policy: { quiesce: p.policy, memory: p.method },
      consistent: false,
      actions: p.actions,
      timings: {},
      warnings: [`PARTIAL CAPTURE: ${p.message}`, ...p.warnings],
    };
    if (p.options.label !== undefined) manifest.label = p.options.label;
    await writer.addJsonSection(SECTION.manifest, manifest);
    await writer.finish();
  } catch {
    await writer.abort();
    await rm(target, { force: true }).catch(() => undefined);
  }
}
