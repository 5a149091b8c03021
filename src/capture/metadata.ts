/**
 * The metadata half of a capture: identity, vCPU registers, memory map and block devices, each from
 * read-only QMP queries (HMP only where QEMU 7.2 has no QMP equivalent: `info registers -a`,
 * `info mtree -f`). Everything is kept verbatim next to what vmpm parsed out of it.
 */
import type { BlockDevice, BlockSection, CpuState, CpusSection, RunState } from '../bundle/schema';
import { parseInfoRegisters } from '../arch';
import type { QmpClient, QmpGreeting } from '../qmp';
import { toHex } from '../util/hex';
import { parseMtreeFlat } from './parse/mtree';
import type { FlatRegion } from './parse/mtree';

export interface QueryStatus {
  status: string;
  running: boolean;
}

export interface Identity {
  version: string;
  package: string;
  name: string | null;
  uuid: string | null;
  arch: string;
  kvm: { enabled: boolean; present: boolean } | null;
}

export interface MemoryInfo {
  regions: FlatRegion[];
  raw: string;
  sizeSummary: { baseMemory: bigint; pluggedMemory: bigint | null } | null;
  memdevs: unknown[];
  memoryDevices: unknown[];
}

/** A query that some machines or builds lack (e.g. query-memory-devices); absence is recorded, not fatal. */
async function optional<T>(client: QmpClient, command: string, warnings: string[]): Promise<T | undefined> {
  try {
    return await client.execute<T>(command);
  } catch (err) {
    warnings.push(`${command} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    return undefined;
  }
}

/** What the libvirt transport adds to query-status (src/libvirt/commands.ts): libvirt's words and facts. */
export interface LibvirtStatus {
  state: string;
  reason: string;
  domain: string;
  uuid: string;
  uri: string | null;
  libvirtVersion: string | null;
  qemuVersion: string | null;
  /** What the domain's configuration lacks for a post-mortem, in libvirt's terms. */
  readiness?: string[];
}

export async function queryStatus(client: QmpClient, options: { timeoutMs?: number } = {}): Promise<RunState> {
  return (await queryStatusDetailed(client, options)).state;
}

/** query-status, with libvirt's view when the session runs over libvirt. */
export async function queryStatusDetailed(client: QmpClient, options: { timeoutMs?: number } = {}): Promise<{ state: RunState; libvirt?: LibvirtStatus }> {
  const at = new Date().toISOString();
  const s = await client.execute<QueryStatus & { libvirt?: LibvirtStatus }>('query-status', undefined, options);
  const state: RunState = { status: s.status, running: s.running, at };
  if (s.libvirt === undefined || typeof s.libvirt.state !== 'string') return { state };
  state.libvirt = `${s.libvirt.state} (${s.libvirt.reason})`;
  return { state, libvirt: s.libvirt };
}

/**
 * The guest's UUID as QEMU reports it (query-uuid), or null when it has none (the all-zero UUID) or the
 * query failed (a warning). The survey reads it before anything changes on the guest: the claim names
 * the guest by it from the first change (claim.ts); the identity reuses that answer.
 */
export async function readGuestUuid(client: QmpClient, warnings: string[]): Promise<string | null> {
  const uuid = await optional<{ UUID: string }>(client, 'query-uuid', warnings);
  // QEMU reports the all-zero UUID when none was set with -uuid.
  return uuid && uuid.UUID !== '00000000-0000-0000-0000-000000000000' ? uuid.UUID : null;
}

/** `uuid`: readGuestUuid's answer when the caller already has it (the survey), so QEMU is not asked twice. */
export async function collectIdentity(client: QmpClient, warnings: string[], uuid?: string | null): Promise<Identity> {
  // Over a transport without a greeting (libvirt) the session learned the version with query-version when
  // it opened (capabilities then stay unknown): use that answer instead of asking QEMU a second time.
  const version = client.greeting.capabilities === undefined ? client.greeting.version : await client.execute<QmpGreeting['version']>('query-version');
  const target = await client.execute<{ arch: string }>('query-target');
  const name = await optional<{ name?: string }>(client, 'query-name', warnings);
  const guestUuid = uuid !== undefined ? uuid : await readGuestUuid(client, warnings);
  const kvm = await optional<{ enabled: boolean; present: boolean }>(client, 'query-kvm', warnings);
  const v = version.qemu;
  return {
    version: `${v.major}.${v.minor}.${v.micro}`,
    package: version.package ?? '',
    name: name?.name ?? null,
    uuid: guestUuid,
    arch: target.arch,
    kvm: kvm ? { enabled: kvm.enabled, present: kvm.present } : null,
  };
}

export interface CpuFast {
  'cpu-index': number;
  'qom-path'?: string;
  'thread-id'?: number;
}

/** vCPU thread ids and QOM paths: they do not change while the guest runs, so read before any stop. */
export async function queryCpusFast(client: QmpClient, warnings: string[]): Promise<CpuFast[]> {
  return (await optional<CpuFast[]>(client, 'query-cpus-fast', warnings)) ?? [];
}

/** The registers of every vCPU (`info registers -a`): the one read that must happen inside the stop. */
export async function readRegisters(client: QmpClient, arch: string, fast: CpuFast[], warnings: string[]): Promise<CpusSection> {
  const text = await client.hmp('info registers -a');
  let parsed: CpuState[];
  try {
    parsed = parseInfoRegisters(text, arch);
  } catch (err) {
    // Keep the evidence even when the parser does not understand it.
    warnings.push(`registers not parsed: ${err instanceof Error ? err.message : String(err)}`);
    parsed = [{ index: 0, arch, mode: 'unknown', registers: {}, raw: text }];
  }
  const cpus = parsed.map((cpu) => {
    const info = fast.find((f) => f['cpu-index'] === cpu.index);
    const out: CpuState = { ...cpu };
    if (info?.['qom-path'] !== undefined) out.qomPath = info['qom-path'];
    if (info?.['thread-id'] !== undefined) out.threadId = info['thread-id'];
    return out;
  });
  return { arch, source: 'info-registers', cpus };
}

function asBigint(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(v);
  return null;
}

export async function collectMemoryInfo(client: QmpClient, warnings: string[]): Promise<MemoryInfo> {
  const raw = await client.hmp('info mtree -f');
  const regions = parseMtreeFlat(raw);
  const summary = await optional<{ 'base-memory': unknown; 'plugged-memory'?: unknown }>(client, 'query-memory-size-summary', warnings);
  const memdevs = (await optional<unknown[]>(client, 'query-memdev', warnings)) ?? [];
  const memoryDevices = (await optional<unknown[]>(client, 'query-memory-devices', warnings)) ?? [];
  const base = summary ? asBigint(summary['base-memory']) : null;
  return {
    regions,
    raw,
    sizeSummary: base === null ? null : { baseMemory: base, pluggedMemory: summary ? asBigint(summary['plugged-memory']) : null },
    memdevs,
    memoryDevices,
  };
}

interface QueryBlockEntry {
  device: string;
  qdev?: string;
  'io-status'?: string;
  inserted?: { file?: string; drv?: string; ro?: boolean; 'node-name'?: string };
}

export async function collectBlock(client: QmpClient, warnings: string[]): Promise<{ section: BlockSection; rawDevices: unknown[] }> {
  const devices = (await optional<QueryBlockEntry[]>(client, 'query-block', warnings)) ?? [];
  const stats = (await optional<unknown[]>(client, 'query-blockstats', warnings)) ?? [];
  const section: BlockSection = {
    devices: devices.map((d) => {
      const out: BlockDevice = { device: d.device, raw: d };
      if (d.qdev !== undefined) out.qdev = d.qdev;
      if (d.inserted?.['node-name'] !== undefined) out.nodeName = d.inserted['node-name'];
      if (d['io-status'] !== undefined) out.ioStatus = d['io-status'];
      if (d.inserted?.file !== undefined) out.file = d.inserted.file;
      if (d.inserted?.drv !== undefined) out.driver = d.inserted.drv;
      if (d.inserted?.ro !== undefined) out.readOnly = d.inserted.ro;
      return out;
    }),
    stats,
  };
  return { section, rawDevices: devices };
}

export function hexOrNull(v: bigint | null): `0x${string}` | null {
  return v === null ? null : toHex(v);
}
