import { isRecord } from '../util/guards';
import type { JsonValue } from './json';
import type { QmpGreeting } from './types';

/** Validates {"QMP": {"version": {"qemu": {...}, "package"}, "capabilities": [...]}}; undefined if malformed. */
export function parseGreeting(msg: { [key: string]: JsonValue }): QmpGreeting | undefined {
  const qmp = msg.QMP;
  if (!isRecord(qmp) || !isRecord(qmp.version) || !isRecord(qmp.version.qemu)) return undefined;
  const { major, minor, micro } = qmp.version.qemu;
  if (typeof major !== 'number' || typeof minor !== 'number' || typeof micro !== 'number') return undefined;
  const caps = qmp.capabilities;
  if (!Array.isArray(caps) || !caps.every((c): c is string => typeof c === 'string')) return undefined;
  const pkg = qmp.version.package;
  return { version: { qemu: { major, minor, micro }, package: typeof pkg === 'string' ? pkg : '' }, capabilities: [...caps] };
}
