/**
 * The parts of QMP replies vmpm relies on, as QEMU's schema (qapi/*.json) defines them. A monitor is
 * input like any other: a buggy or hostile one that answers query-version with `{}` must fail as one
 * line naming the command and the field, not as "Cannot read properties of undefined (reading
 * 'major')" three layers up. Only what vmpm reads is checked; extra fields are fine.
 */
import { any, array, bool, int, object, type Shape, ShapeError, str } from '../util/shape';
import { QmpProtocolError } from './errors';

const REPLY_SHAPES: Readonly<Record<string, Shape>> = {
  // qapi/run-state.json StatusInfo
  'query-status': object({ status: str, running: bool }),
  // qapi/control.json VersionInfo
  'query-version': object({ qemu: object({ major: int, minor: int, micro: int }), package: str }),
  // qapi/machine-target.json TargetInfo
  'query-target': object({ arch: str }),
  // qapi/misc.json NameInfo, UuidInfo, KvmInfo
  'query-name': object({ 'name?': str }),
  'query-uuid': object({ UUID: str }),
  'query-kvm': object({ enabled: bool, present: bool }),
  // qapi/machine.json CpuInfoFast
  'query-cpus-fast': array(object({ 'cpu-index': int, 'qom-path?': str, 'thread-id?': int })),
  // qapi/machine.json MemoryInfo
  'query-memory-size-summary': object({ 'base-memory': int, 'plugged-memory?': int }),
  'query-memdev': array(any),
  'query-memory-devices': array(any),
  // qapi/block.json BlockInfo (block-core.json BlockDeviceInfo for `inserted`)
  'query-block': array(
    object({
      device: str,
      'qdev?': str,
      'io-status?': str,
      'inserted?': object({ 'file?': str, 'drv?': str, 'ro?': bool, 'node-name?': str }),
    }),
  ),
  'query-blockstats': array(any),
  // qapi/dump.json DumpQueryResult
  'query-dump': object({ status: str, completed: int, total: int }),
};

/** Throws QmpProtocolError when `value`, QEMU's reply to `command`, lacks what vmpm relies on. */
export function checkReply(command: string, value: unknown, received: string): void {
  const shape = REPLY_SHAPES[command];
  if (shape === undefined) return;
  try {
    shape(value, '');
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    const where = err.path === '' ? `the reply must be ${err.expected}` : `reply field ${err.path} must be ${err.expected}`;
    throw new QmpProtocolError(`QEMU's reply to ${command} is not what QMP specifies: ${where}`, { received });
  }
}
