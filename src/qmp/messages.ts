import { isRecord } from '../util/guards';
import type { JsonValue } from './json';
import type { QmpGreeting } from './types';

/** Validates {"QMP": {"version": {"qemu": {...}, "package"}, "capabilities": [...]}}; undefined if malformed. */
export function parseGreeting(msg: { [key: string]: JsonValue }): QmpGreeting | undefined {
  const qmp = msg.QMP;
  if (!isRecord(qmp)) return undefined;
  const version = parseVersion(qmp.version);
  if (version === undefined) return undefined;
  const caps = qmp.capabilities;
  if (!Array.isArray(caps) || !caps.every((c): c is string => typeof c === 'string')) return undefined;
  return { version, capabilities: [...caps] };
}

/** Validates a VersionInfo ({"qemu": {"major", "minor", "micro"}, "package"}), as in the greeting and query-version. */
export function parseVersion(v: unknown): QmpGreeting['version'] | undefined {
  if (!isRecord(v) || !isRecord(v.qemu)) return undefined;
  const { major, minor, micro } = v.qemu;
  if (typeof major !== 'number' || typeof minor !== 'number' || typeof micro !== 'number') return undefined;
  const pkg = v.package;
  return { qemu: { major, minor, micro }, package: typeof pkg === 'string' ? pkg : '' };
}
