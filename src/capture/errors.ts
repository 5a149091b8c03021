/**
 * Normalises what QEMU reports about trouble in or around the guest into `ErrorRecord`s: QMP events
 * (shapes as in QEMU 7.2's qapi schema), the run state from `query-status`, and block devices whose
 * `io-status` is not ok. Pure functions; the raw event / status / device is kept verbatim.
 */
import { isoFromQmpTimestamp } from '../util/time';
import type { ErrorRecord, Severity } from '../bundle/schema';
import { runStateRule } from '../qmp';
import { isRecord } from '../util/guards';
import { toHex } from '../util/hex';

export interface EventLike {
  event: string;
  data?: unknown;
  timestamp: { seconds: number; microseconds: number };
}

type Fields = Record<string, unknown>;

const str = (o: Fields, key: string): string | undefined => (typeof o[key] === 'string' ? (o[key] as string) : undefined);
const bool = (o: Fields, key: string): boolean | undefined => (typeof o[key] === 'boolean' ? (o[key] as boolean) : undefined);

/** Integers from QMP are numbers, or bigint above 2^53; show them in hex (guest values such as PSWs). */
function num(o: Fields, key: string): string | undefined {
  const v = o[key];
  if (typeof v === 'bigint' && v >= 0n) return toHex(v);
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return toHex(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return undefined;
}

// Re-exported: error records and the journal date events with the same helper.
export { isoFromQmpTimestamp };

/** "hyper-v crash parameters 0x.. 0x.. ..." / "s390 core 0 disabled-wait psw-mask 0x.. psw-addr 0x..". */
function panicInfoText(info: unknown): string | undefined {
  if (!isRecord(info)) return undefined;
  const type = str(info, 'type');
  if (type === 'hyper-v') {
    const args = ['arg1', 'arg2', 'arg3', 'arg4', 'arg5'].map((k) => num(info, k) ?? '?');
    return `hyper-v crash parameters ${args.join(' ')}`;
  }
  if (type === 's390') {
    return `s390 core ${num(info, 'core') ?? '?'} ${str(info, 'reason') ?? 'unknown'} psw-mask ${num(info, 'psw-mask') ?? '?'} psw-addr ${num(info, 'psw-addr') ?? '?'}`;
  }
  return type === undefined ? undefined : `${type} crash information`;
}

/** Block events name the device by its legacy id, or by node name when the id is "" (-blockdev). */
function blockDevice(data: Fields): string | undefined {
  const device = str(data, 'device');
  if (device !== undefined && device !== '') return device;
  return str(data, 'node-name');
}

interface Normalised {
  kind: string;
  severity: Severity;
  summary: string;
  device?: string;
}

function normalise(event: string, data: Fields): Normalised | undefined {
  const action = str(data, 'action');
  const actionText = action === undefined ? '' : ` (action ${action})`;
  switch (event) {
    case 'GUEST_PANICKED':
    case 'GUEST_CRASHLOADED': {
      const info = panicInfoText(data.info);
      return {
        kind: event === 'GUEST_PANICKED' ? 'guest-panicked' : 'guest-crashloaded',
        severity: 'critical',
        summary: `${event}${actionText}${info === undefined ? '' : `: ${info}`}`,
      };
    }
    case 'BLOCK_IO_ERROR': {
      const device = blockDevice(data);
      const nospace = bool(data, 'nospace') === true ? ', no space left' : '';
      const r: Normalised = {
        kind: 'block-io-error',
        severity: action === 'stop' ? 'critical' : 'error',
        summary: `BLOCK_IO_ERROR on ${device ?? '(unnamed device)'}: ${str(data, 'operation') ?? 'i/o'} ${str(data, 'reason') ?? 'error'}${nospace}${actionText}`,
      };
      if (device !== undefined) r.device = device;
      return r;
    }
    case 'BLOCK_JOB_ERROR': {
      const device = blockDevice(data);
      const r: Normalised = {
        kind: 'block-job-error',
        severity: 'error',
        summary: `BLOCK_JOB_ERROR on job ${device ?? '(unnamed)'}: ${str(data, 'operation') ?? 'i/o'} error${actionText}`,
      };
      if (device !== undefined) r.device = device;
      return r;
    }
    case 'BLOCK_IMAGE_CORRUPTED': {
      const device = blockDevice(data);
      const fatal = bool(data, 'fatal') === true;
      const r: Normalised = {
        kind: 'block-image-corrupted',
        severity: fatal ? 'critical' : 'error',
        summary: `BLOCK_IMAGE_CORRUPTED on ${device ?? '(unnamed device)'}: ${str(data, 'msg') ?? 'corruption'}${fatal ? ' (fatal)' : ''}`,
      };
      if (device !== undefined) r.device = device;
      return r;
    }
    case 'MEMORY_FAILURE': {
      const flags = isRecord(data.flags) ? data.flags : {};
      const actionRequired = bool(flags, 'action-required') === true;
      const recursive = bool(flags, 'recursive') === true;
      const severe = actionRequired || action === 'reset' || action === 'fatal';
      const notes = [actionRequired ? 'action required' : 'action optional', ...(recursive ? ['recursive'] : [])];
      return {
        kind: 'memory-failure',
        severity: severe ? 'critical' : 'warning',
        summary: `MEMORY_FAILURE for ${str(data, 'recipient') ?? 'unknown recipient'}${actionText}, ${notes.join(', ')}`,
      };
    }
    case 'WATCHDOG':
      return { kind: 'watchdog', severity: 'warning', summary: `WATCHDOG fired${actionText}` };
    case 'RESET':
    case 'SHUTDOWN': {
      const reason = str(data, 'reason') ?? 'none';
      const guest = bool(data, 'guest');
      const who = guest === true ? 'guest' : guest === false ? 'host' : 'unknown';
      // A guest that resets or panics, or a host error, may be the incident itself; orderly requests are context.
      const severity: Severity = ['guest-reset', 'guest-panic', 'host-error'].includes(reason) ? 'warning' : 'info';
      return { kind: event.toLowerCase(), severity, summary: `${event} by ${who} (reason ${reason})` };
    }
    default:
      return undefined;
  }
}

/** The error record for a QMP event, or undefined for events that are not about trouble (STOP, RESUME ...). */
export function errorRecordFromEvent(e: EventLike): ErrorRecord | undefined {
  const data = isRecord(e.data) ? e.data : {};
  const n = normalise(e.event, data);
  if (n === undefined) return undefined;
  const raw: EventLike = { event: e.event, timestamp: e.timestamp };
  if (e.data !== undefined) raw.data = e.data;
  const record: ErrorRecord = {
    time: isoFromQmpTimestamp(e.timestamp) ?? new Date().toISOString(),
    source: 'event',
    kind: n.kind,
    severity: n.severity,
    summary: n.summary,
    raw,
  };
  if (n.device !== undefined) record.device = n.device;
  return record;
}

/** Records derived from the run state: none for healthy states (running, paused, prelaunch, ...). */
export function errorRecordsFromStatus(status: { status: string; running: boolean }, at: string): ErrorRecord[] {
  const trouble = runStateRule(status.status)?.trouble;
  if (trouble === undefined) return [];
  return [{
    time: at,
    source: 'run-state',
    kind: status.status,
    severity: trouble.severity,
    summary: `run state ${status.status}: ${trouble.text}`,
    raw: status,
  }];
}

/** Image file names can be long json:{...} specs; a summary line shows only their start. */
function shorten(text: string | undefined, max = 100): string | undefined {
  return text === undefined || text.length <= max ? text : `${text.slice(0, max)}...`;
}

/** Records for `query-block` devices whose io-status is present and not "ok" (failed, nospace). */
export function errorRecordsFromBlock(devices: unknown[], at: string): ErrorRecord[] {
  const records: ErrorRecord[] = [];
  for (const dev of devices) {
    if (!isRecord(dev)) continue;
    const ioStatus = str(dev, 'io-status');
    if (ioStatus === undefined || ioStatus === 'ok') continue;
    const inserted = isRecord(dev.inserted) ? dev.inserted : {};
    const name = blockDevice({ device: dev.device, 'node-name': inserted['node-name'] }) ?? str(dev, 'qdev') ?? '(unnamed device)';
    const file = shorten(str(inserted, 'file'));
    records.push({
      time: at,
      source: 'io-status',
      kind: 'block-io-status',
      severity: 'error',
      summary: `block device ${name} io-status ${ioStatus}${ioStatus === 'nospace' ? ' (no space left on the host)' : ''}${file === undefined ? '' : ` (${file})`}`,
      device: name,
      raw: dev,
    });
  }
  return records;
}
