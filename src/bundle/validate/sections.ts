/**
 * The schema of every JSON section vmpm reads (src/bundle/schema.ts, docs/bundle-format.md), as
 * validators. Enumerations a newer writer may extend (origin, policy, memory method, error source)
 * are checked as strings; the ones readers index tables with (severity, transcript direction) exactly.
 */
import { SECTION } from '../schema';
import { any, array, bool, hex, nullable, num, object, oneOf, record, type Shape, str, uint } from '../../util/shape';

const runState = object({ status: str, running: bool, 'reason?': str, at: str, 'libvirt?': str });

const transport = object({
  kind: str,
  endpoint: str,
  'libvirt?': object({ domain: str, uuid: str, uri: nullable(str), libvirtVersion: nullable(str), qemuVersion: nullable(str) }),
  'libvirtOwned?': str,
});

export const errorRecord = object({
  time: str,
  source: str,
  kind: str,
  severity: oneOf('critical', 'error', 'warning', 'info'),
  summary: str,
  'device?': str,
  'raw?': any,
});

const manifest = object({
  format: object({ major: uint, minor: uint }),
  vmpmVersion: str,
  createdAt: str,
  'label?': str,
  host: object({ hostname: str, platform: str, nodeVersion: str, 'codec?': str }),
  origin: str,
  // capabilities: null when no QMP greeting was seen (libvirt reads it itself)
  qemu: nullable(object({ version: str, package: str, capabilities: nullable(array(str)) })),
  vm: object({
    name: nullable(str),
    uuid: nullable(str),
    arch: str,
    kvm: nullable(object({ enabled: bool, present: bool })),
    cpuCount: uint,
    ramSize: nullable(hex),
  }),
  runState: object({ before: runState, after: runState }),
  policy: object({ quiesce: str, memory: str, 'trigger?': errorRecord }),
  consistent: bool,
  actions: array(object({ at: str, action: str, 'detail?': str, durationMs: num, result: str, 'error?': str })),
  timings: record(num),
  warnings: array(str),
  'transport?': transport,
});

const cpu = object({
  index: uint,
  arch: str,
  mode: str,
  'exceptionLevel?': uint,
  'halted?': bool,
  registers: record(hex),
  raw: str,
  'qomPath?': str,
  'threadId?': num,
});

const memRegion = object({ name: str, kind: str, start: hex, end: hex, 'offset?': hex, 'priority?': num, captured: bool });

const memmap = object({
  regions: array(memRegion),
  sizeSummary: nullable(object({ baseMemory: hex, pluggedMemory: nullable(hex) })),
  memdevs: array(any),
  memoryDevices: array(any),
  raw: str,
});

const block = object({
  devices: array(
    object({ device: str, 'qdev?': str, 'nodeName?': str, 'ioStatus?': str, 'file?': str, 'driver?': str, 'readOnly?': bool, 'raw?': any }),
  ),
  stats: array(any),
});

const events = object({
  events: array(
    object({ event: str, 'data?': any, timestamp: object({ seconds: num, microseconds: num }), time: str, receivedAt: str }),
  ),
  dropped: uint,
});

const transcript = object({ endpoint: str, entries: array(object({ at: str, dir: oneOf('tx', 'rx'), line: str })) });

/** Validators by section name; a JSON section not listed here is handed out unchecked (as `unknown`). */
export const SECTION_SHAPES: Readonly<Record<string, Shape>> = {
  [SECTION.manifest]: manifest,
  [SECTION.cpus]: object({ cpus: array(cpu), arch: str, 'source?': str }),
  [SECTION.memmap]: memmap,
  [SECTION.block]: block,
  [SECTION.errors]: object({ records: array(errorRecord) }),
  [SECTION.events]: events,
  [SECTION.transcript]: transcript,
};
