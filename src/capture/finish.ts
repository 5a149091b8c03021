/**
 * The finish phase: the sections written after the memory (memory map, errors, events, transcript,
 * attachments, ELF notes), the manifest, the bundle's trailer, and the summary derived from them.
 */
import { rename } from 'node:fs/promises';
import { ATTACHMENT_PREFIX, SECTION, type CpusSection, type Manifest, type MemmapSection, type RunState } from '../bundle/schema';
import type { BundleWriter } from '../bundle';
import { parseElfNotes, vmcoreinfoFromNotes } from '../formats/elf';
import { describeError } from '../util/errors';
import { toHex } from '../util/hex';
import { roundMs } from '../util/time';
import type { Metadata } from './collect';
import { collectErrorRecords, mergeJournal, runStateReason } from './evidence';
import { buildManifest } from './manifest';
import type { MemoryCaptureResult } from './memory-common';
import { hexOrNull } from './metadata';
import { describeRegions } from './plan';
import type { CaptureRun } from './run';
import { buildSummary, memoryTotals, type CaptureSummary } from './summary';
import type { Survey } from './survey';

export interface CaptureResult {
  path: string;
  sha256: string;
  size: number;
  manifest: Manifest;
  summary: CaptureSummary;
}

export interface Captured {
  writer: BundleWriter;
  /** The file being written (the output, or its `.partial.vmpm` name with keepPartial). */
  target: string;
  found: Survey;
  meta: Metadata;
  cpus: CpusSection;
  memory: MemoryCaptureResult;
  after: RunState;
  attachments: Array<{ name: string; data: Buffer }>;
}

export async function finishBundle(run: CaptureRun, c: Captured): Promise<CaptureResult> {
  const since = performance.now();
  const { client, options, warnings } = run;
  const { writer, found, meta, memory } = c;
  const records = await writeEvidence(run, c);
  const mem = meta.mem;
  const ramSize = mem.sizeSummary ? mem.sizeSummary.baseMemory + (mem.sizeSummary.pluggedMemory ?? 0n) : null;
  // Set before the manifest is written: it holds them.
  run.timings.finish = roundMs(performance.now() - since);
  run.timings.total = roundMs(performance.now() - run.t0);
  const manifestInput: Parameters<typeof buildManifest>[0] = {
    createdAt: run.createdAt,
    origin: options.origin ?? 'capture',
    capabilities: client.greeting.capabilities ?? null,
    identity: meta.identity,
    cpuCount: c.cpus.cpus.length,
    ramSize,
    before: found.before,
    after: c.after,
    policy: run.policy,
    memory: found.method,
    actions: run.actions.actions,
    timings: run.timings,
    warnings,
    transport: found.transport,
  };
  if (options.label !== undefined) manifestInput.label = options.label;
  if (options.trigger) manifestInput.trigger = options.trigger;
  if (memory.elfNotes) manifestInput.elfNotes = memory.elfNotes.info;
  const manifest: Manifest = buildManifest(manifestInput);
  await writer.addJsonSection(SECTION.manifest, manifest);
  const finished = await writer.finish();
  let path = finished.path ?? c.target;
  if (options.keepPartial) {
    await rename(path, options.output);
    path = options.output;
  }
  const file = { path, sha256: finished.sha256, size: finished.size };
  const summary = buildSummary({
    manifest,
    file,
    memory: memoryTotals(memory.ranges),
    cpus: c.cpus.cpus.length,
    errorRecords: records,
    durationMs: Math.round(performance.now() - run.t0),
  });
  return { ...file, manifest, summary };
}

/** Everything after the memory but the manifest; returns the number of error records. */
async function writeEvidence(run: CaptureRun, c: Captured): Promise<number> {
  const { client, options, warnings } = run;
  const { writer, found, meta, memory } = c;
  const captured = memory.ranges.map((r) => ({ start: r.start, end: r.start + r.length }));
  const mem = meta.mem;
  const memmap: MemmapSection = {
    regions: describeRegions(mem.regions, captured),
    sizeSummary: mem.sizeSummary ? { baseMemory: toHex(mem.sizeSummary.baseMemory), pluggedMemory: hexOrNull(mem.sizeSummary.pluggedMemory) } : null,
    memdevs: mem.memdevs,
    memoryDevices: mem.memoryDevices,
    raw: mem.raw,
  };
  await writer.addJsonSection(SECTION.memmap, memmap);

  const journal = mergeJournal(options.journal ?? [], client.bufferedEvents());
  const records = collectErrorRecords({ trigger: options.trigger, journal, before: found.before, blockDevices: meta.block.rawDevices });
  found.before.reason ??= runStateReason(found.before, records);
  c.after.reason ??= runStateReason(c.after, records);
  await writer.addJsonSection(SECTION.errors, { records });
  await writer.addJsonSection(SECTION.events, { events: journal, dropped: (options.journalDropped ?? 0) + client.droppedEvents() });
  await writer.addJsonSection(SECTION.transcript, { endpoint: client.endpoint, entries: client.transcript() });
  for (const a of c.attachments) await writer.addRawSection(`${ATTACHMENT_PREFIX}${a.name}`, a.data);
  if (memory.elfNotes) {
    await writer.addRawSection(SECTION.elfNotes, memory.elfNotes.data);
    try {
      const vmcoreinfo = vmcoreinfoFromNotes(parseElfNotes(memory.elfNotes.data, memory.elfNotes.info.byteOrder === 'little'));
      if (vmcoreinfo !== undefined) await writer.addRawSection(SECTION.vmcoreinfo, Buffer.from(vmcoreinfo, 'utf8'));
    } catch (err) {
      warnings.push(`ELF notes not parsed: ${describeError(err)}`);
    }
  }
  return records.length;
}
