import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleWriter } from '../../src/bundle';
import type { CpuState, CpusSection, ErrorRecord, JournalEvent, Manifest, ManifestTransport, MemRegion, RunState } from '../../src/bundle/schema';
import { toHex } from '../../src/util/hex';
import { BOOT_SECTOR_ANSWERS } from '../../src/guest';

/**
 * Builds synthetic bundles with known answers through the real BundleWriter, so analysis tests know
 * exactly which bytes sit at which guest-physical address, which registers each vCPU had, and which
 * pages differ between two bundles.
 */

export interface Patch {
  addr: bigint;
  bytes: Buffer;
}

export interface RangeSpec {
  start: bigint;
  length: bigint;
  name?: string;
  /** Fill every page with non-zero, unique content (its own address repeated), so every page is stored. */
  unique?: boolean;
}

export interface BundleSpec {
  name?: string;
  uuid?: string;
  arch?: string;
  status?: string;
  reason?: string;
  createdAt?: string;
  cpus?: CpuState[];
  regions?: Array<{ name: string; kind: string; start: bigint; end: bigint }>;
  ranges?: RangeSpec[];
  /** Bytes written over the (otherwise zero or unique-filled) memory. */
  patches?: Patch[];
  errors?: ErrorRecord[];
  events?: JournalEvent[];
  /** Section names to leave out (to test degraded bundles). */
  omit?: string[];
  frameBytes?: number;
  /** The manifest's `transport` (how vmpm reached QEMU); absent by default, as in bundles written before it existed. */
  transport?: ManifestTransport;
  /** The cpus section's `source`; absent by default, as in bundles written before it existed. */
  cpuSource?: CpusSection['source'];
  /** The manifest's origin (default 'synthetic'). */
  origin?: Manifest['origin'];
}

/** A small PC-like layout: low RAM, a hole (VGA window), option ROM area, high RAM and the BIOS at 4 GiB - 256 KiB. */
export const PC_REGIONS = [
  { name: 'pc.ram', kind: 'ram', start: 0x0n, end: 0xa0000n },
  { name: 'vga-lowmem', kind: 'io', start: 0xa0000n, end: 0xc0000n },
  { name: 'pc.rom', kind: 'rom', start: 0xc0000n, end: 0x100000n },
  { name: 'pc.ram@high', kind: 'ram', start: 0x100000n, end: 0x1000000n },
  { name: 'pc.bios', kind: 'rom', start: 0xfffc0000n, end: 0x100000000n },
];

/** Captured ranges for PC_REGIONS: everything except the VGA window (a hole). */
export const PC_RANGES: RangeSpec[] = [
  { start: 0x0n, length: 0xa0000n, name: 'pc.ram' },
  { start: 0xc0000n, length: 0x40000n, name: 'pc.rom' },
  { start: 0x100000n, length: 0xf00000n, name: 'pc.ram@high' },
  { start: 0xfffc0000n, length: 0x40000n, name: 'pc.bios' },
];

/** The boot sector's known general registers, plus values that exercise more of the display. */
export const KNOWN_REGISTERS: Record<string, bigint> = {
  ...BOOT_SECTOR_ANSWERS.registers,
  rip: 0x7c66n,
  rflags: 0x46n,
  cr0: 0x10n,
  cr4: 0x0n,
  efer: 0x0n,
  'cs.selector': 0x0n,
  r15: 0xffff_ffff_ffff_fff1n,
};

export function x86Cpu(index: number, overrides: Record<string, bigint> = {}, mode = 'real'): CpuState {
  const registers: Record<string, `0x${string}`> = {};
  for (const [k, v] of Object.entries({ ...KNOWN_REGISTERS, ...overrides })) registers[k] = toHex(v);
  return { index, arch: 'x86_64', mode, halted: true, registers, raw: `CPU#${index}\nEAX=${registers.rax} (synthetic)\n` };
}

function runState(status: string, reason: string | undefined, at: string): RunState {
  const s: RunState = { status, running: status === 'running', at };
  if (reason !== undefined) s.reason = reason;
  return s;
}

/** Memory of one range as 1 MiB chunks: zero (or unique-filled) pages with the patches applied. */
async function* rangeContent(r: RangeSpec, patches: Patch[]): AsyncGenerator<Buffer> {
  const CHUNK = 1n << 20n;
  for (let at = r.start; at < r.start + r.length; at += CHUNK) {
    const n = r.start + r.length - at < CHUNK ? r.start + r.length - at : CHUNK;
    const buf = Buffer.alloc(Number(n));
    if (r.unique) {
      for (let off = 0; off < buf.length; off += 8) buf.writeBigUInt64LE((at + BigInt(off)) | 0x8000_0000_0000_0000n, off);
    }
    for (const p of patches) {
      const pEnd = p.addr + BigInt(p.bytes.length);
      if (pEnd <= at || p.addr >= at + n) continue;
      const from = p.addr > at ? p.addr : at;
      const to = pEnd < at + n ? pEnd : at + n;
      p.bytes.copy(buf, Number(from - at), Number(from - p.addr), Number(to - p.addr));
    }
    yield buf;
  }
}

/** The byte that a spec puts at `addr` (for assertions): patches over the fill. */
export function expectedByte(spec: BundleSpec, addr: bigint): number {
  for (const p of [...(spec.patches ?? [])].reverse()) {
    if (addr >= p.addr && addr < p.addr + BigInt(p.bytes.length)) return p.bytes[Number(addr - p.addr)]!;
  }
  const r = (spec.ranges ?? PC_RANGES).find((x) => addr >= x.start && addr < x.start + x.length);
  if (!r || !r.unique) return 0;
  const word = addr & ~7n;
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(word | 0x8000_0000_0000_0000n);
  return b[Number(addr - word)]!;
}

export async function buildBundle(path: string, spec: BundleSpec = {}): Promise<void> {
  const createdAt = spec.createdAt ?? '2026-01-02T03:04:05.000Z';
  const omit = new Set(spec.omit ?? []);
  const regions = spec.regions ?? PC_REGIONS;
  const ranges = spec.ranges ?? PC_RANGES;
  const cpus = spec.cpus ?? [x86Cpu(0)];
  const arch = spec.arch ?? 'x86_64';
  const w = await BundleWriter.create(path, { frameBytes: spec.frameBytes ?? 4 << 20, workers: 1 });
  try {
    const manifest: Manifest = {
      format: { major: 1, minor: 0 },
      vmpmVersion: '0.0.0-test',
      createdAt,
      label: 'synthetic test bundle',
      host: { hostname: 'testhost', platform: 'linux', nodeVersion: process.version },
      origin: spec.origin ?? 'synthetic',
      qemu: { version: '7.2.22', package: 'Debian 1:7.2+dfsg-7+deb12u18', capabilities: [] },
      vm: { name: spec.name ?? 'testvm', uuid: spec.uuid ?? '11111111-2222-3333-4444-555555555555', arch, kvm: { enabled: false, present: false }, cpuCount: cpus.length, ramSize: toHex(0x1000000n) },
      runState: {
        before: runState(spec.status ?? 'guest-panicked', spec.reason ?? 'GUEST_PANICKED', createdAt),
        after: runState(spec.status ?? 'guest-panicked', spec.reason ?? 'GUEST_PANICKED', createdAt),
      },
      policy: { quiesce: 'keep-stopped', memory: 'pmemsave' },
      consistent: true,
      actions: [],
      timings: { total: 42 },
      warnings: [],
    };
    if (spec.transport) manifest.transport = spec.transport;
    if (!omit.has('manifest')) await w.addJsonSection('manifest', manifest);
    if (!omit.has('cpus')) await w.addJsonSection('cpus', { arch, ...(spec.cpuSource ? { source: spec.cpuSource } : {}), cpus });
    if (!omit.has('memmap')) {
      const captured = (g: { start: bigint; end: bigint }): boolean => ranges.some((r) => r.start <= g.start && r.start + r.length >= g.end);
      const mem: MemRegion[] = regions.map((g) => ({ name: g.name, kind: g.kind, start: toHex(g.start), end: toHex(g.end), captured: captured(g) }));
      await w.addJsonSection('memmap', { regions: mem, sizeSummary: { baseMemory: toHex(0x1000000n), pluggedMemory: null }, memdevs: [], memoryDevices: [], raw: '' });
    }
    if (!omit.has('errors')) await w.addJsonSection('errors', { records: spec.errors ?? [] });
    if (!omit.has('events')) await w.addJsonSection('events', { events: spec.events ?? [], dropped: 0 });
    for (const r of ranges) {
      const opts: { name?: string; expectedLength: bigint } = { expectedLength: r.length };
      if (r.name !== undefined) opts.name = r.name;
      await w.addMemoryRange(r.start, rangeContent(r, spec.patches ?? []), opts);
    }
    await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

export function panicRecord(time: string, summary = 'GUEST_PANICKED (action pause)'): ErrorRecord {
  return { time, source: 'event', kind: 'guest-panicked', severity: 'critical', summary, raw: { event: 'GUEST_PANICKED', data: { action: 'pause' } } };
}

export function journalEvent(event: string, seconds: number, data?: unknown): JournalEvent {
  const e: JournalEvent = { event, timestamp: { seconds, microseconds: 5 }, time: new Date(seconds * 1000).toISOString(), receivedAt: new Date(seconds * 1000 + 1).toISOString() };
  if (data !== undefined) e.data = data;
  return e;
}

/** A private temp directory removed by `cleanup()`. */
export function tempDir(prefix = 'vmpm-analysis-'): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, path: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
