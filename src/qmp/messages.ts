import { describeError } from '../util/errors';
import { isRecord } from '../util/guards';
import { clipLine, QmpProtocolError } from './errors';
import { parseJson, type JsonValue } from './json';
import type { QmpGreeting } from './types';

/** A QMP message: every one (greeting, reply, event) is a JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** Validates {"QMP": {"version": {"qemu": {...}, "package"}, "capabilities": [...]}}; undefined if malformed. */
export function parseGreeting(msg: JsonObject): QmpGreeting | undefined {
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

/**
 * One received line as a QMP message, or the protocol error that closes the session: QMP speaks only
 * JSON objects (qmp-spec.rst), so invalid JSON or any other JSON value is fatal.
 */
export function readMessage(line: string, endpoint: string): JsonObject | QmpProtocolError {
  let msg: JsonValue;
  try {
    msg = parseJson(line);
  } catch (err) {
    return new QmpProtocolError(`${endpoint} sent invalid JSON (${describeError(err)}); connection closed`, { received: clipLine(line) });
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    return new QmpProtocolError(`${endpoint} sent a JSON value that is not an object; connection closed`, { received: clipLine(line) });
  }
  return msg;
}
