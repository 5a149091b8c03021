import { VMPM_VERSION } from '../../version';
import { fromHex } from '../../util/hex';
import type { AnalysisBundle } from '../source';
import { loadSections, regionSpans, type BundleSections } from '../sections';
import { buildInfo, type InfoModel } from '../info';
import { buildRegs, type RegsCpu } from '../regs';
import { buildMemmap, type MemmapModel } from '../memmap';
import { buildErrors, buildEvents, type ErrorsModel, type EventsModel } from '../timeline';
import { buildDiff, type DiffModel } from '../diff';
import { buildSpacePicture, type SpacePicture } from './space';
import type { RegionSpan } from '../ranges';
import { guestKernelSummary, loadGuestKernel, type GuestKernelSummary } from '../guest-kernel';
import { withKernelFaults } from '../errors-kernel';
import { buildGuestStacks, type StackModel } from '../stack';

/** `vmpm report --format json` for one bundle: everything the Markdown and HTML reports show. */
export interface BundleReport {
  kind: 'bundle';
  generatedBy: string;
  generatedAt: string;
  info: InfoModel;
  cpus: RegsCpu[];
  memmap: MemmapModel;
  errors: ErrorsModel;
  events: EventsModel;
  /** QEMU's `info registers` text per vCPU, verbatim (for the collapsible raw view). */
  rawRegisters: Array<{ index: number; text: string }>;
  addressSpace: SpacePicture;
  /** What the guest kernel said (release, panic, last messages, faults), or why there is no Linux kernel. */
  guestKernel: GuestKernelSummary;
  /** Each vCPU's symbolized instruction pointer and kernel stack scan (present when the guest kernel is). */
  guestStacks?: StackModel;
}

/** `vmpm report A --against B --format json`: both bundles summarised plus their diff. */
export interface DiffReport {
  kind: 'diff';
  generatedBy: string;
  generatedAt: string;
  a: InfoModel;
  b: InfoModel;
  diff: DiffModel;
  /** B's address space with changed pages counted per bin (the heat strip). */
  addressSpace: SpacePicture;
}

/** Regions to draw: the memory map, or the captured ranges when a bundle has no map. */
function pictureRegions(bundle: AnalysisBundle, s: BundleSections): RegionSpan[] {
  const fromMap = regionSpans(s.memmap);
  if (fromMap.length > 0) return fromMap;
  return bundle.ranges().map((r) => ({ name: r.name ?? 'captured', kind: 'ram', start: r.start, end: r.start + r.length }));
}

export async function buildBundleReport(bundle: AnalysisBundle, options: { verify?: boolean } = {}): Promise<BundleReport> {
  const s = await loadSections(bundle);
  const info = await buildInfo(bundle, { sections: s, verify: options.verify });
  const kernel = await loadGuestKernel(bundle);
  const guestStacks = kernel.available ? await buildGuestStacks(bundle) : undefined;
  return {
    kind: 'bundle',
    generatedBy: `vmpm ${VMPM_VERSION}`,
    generatedAt: new Date().toISOString(),
    info,
    cpus: buildRegs(s.cpus).cpus,
    memmap: buildMemmap(bundle, s.memmap),
    errors: withKernelFaults(buildErrors(s.errors), kernel),
    events: buildEvents(s.events),
    rawRegisters: (s.cpus?.cpus ?? []).map((c) => ({ index: c.index, text: c.raw ?? '' })),
    addressSpace: buildSpacePicture(pictureRegions(bundle, s), bundle.pages()),
    guestKernel: guestKernelSummary(kernel),
    ...(guestStacks ? { guestStacks } : {}),
  };
}

export async function buildDiffReport(a: AnalysisBundle, b: AnalysisBundle, options: { verify?: boolean } = {}): Promise<DiffReport> {
  const sa = await loadSections(a);
  const sb = await loadSections(b);
  const diff = await buildDiff(a, b, { sectionsA: sa, sectionsB: sb });
  const changed = [...diff.memory.changed, ...diff.memory.added, ...diff.memory.removed].map((r) => ({ start: fromHex(r.start), end: fromHex(r.end) }));
  return {
    kind: 'diff',
    generatedBy: `vmpm ${VMPM_VERSION}`,
    generatedAt: new Date().toISOString(),
    a: await buildInfo(a, { sections: sa, verify: options.verify }),
    b: await buildInfo(b, { sections: sb, verify: options.verify }),
    diff,
    addressSpace: buildSpacePicture(pictureRegions(b, sb), b.pages(), changed),
  };
}
