/**
 * The `cpus` section of an x86 snapshot capture, from the migration stream's device state: QEMU's
 * background snapshot stops the guest itself, saves every vCPU's state (the `cpu` sections) and
 * starts write-tracking within that one stop, so these registers are of the instant every RAM page
 * is from, and vmpm needs no stop of its own (the pause is QEMU's few milliseconds, not its setup).
 *
 * Registers the stream does not carry, or the decoder does not map (cpu-x86.ts: st0-7, ymm/zmm/k),
 * are absent, never zero. `raw` says where the values came from: there is no `info registers` text.
 * Without decodable CPU state the capture fails: a bundle without the registers of its instant, or
 * with registers read at another instant, would be a lie.
 */
import type { CpusSection, CpuState } from '../bundle/schema';
import { x86Mode } from '../arch';
import type { VmstateCpu } from '../formats/migration';
import { VmpmError } from '../util/errors';
import { toHex } from '../util/hex';
import type { CpuFast } from './metadata';

/** Values export's NT_PRSTATUS, `regs` and the page-table walk cannot do without. */
const REQUIRED = ['rip', 'rflags', 'rsp', 'cr0', 'cr3', 'cs.selector', 'fs.base', 'gs.base'];

export const STREAM_SOURCE = 'migration-stream';

export function cpusFromStream(vmstate: VmstateCpu[] | undefined, why: string | undefined, fast: CpuFast[]): CpusSection {
  const fail = (what: string): never => {
    throw new VmpmError(`the background snapshot's vCPU state could not be decoded (${what}), so the bundle would have no registers of its instant; capture with --memory-method dump`);
  };
  if (vmstate === undefined) return fail(why ?? 'no device state');
  if (vmstate.length === 0) return fail('no `cpu` device section in the stream');
  if (fast.length > 0 && vmstate.length !== fast.length) fail(`${vmstate.length} cpu sections for ${fast.length} vCPUs`);
  const cpus = vmstate.map((v): CpuState => {
    const missing = REQUIRED.filter((n) => v.registers[n] === undefined);
    if (missing.length > 0) fail(`cpu ${v.index} has no ${missing.join(', ')}`);
    const registers = Object.fromEntries(Object.entries(v.registers).map(([k, x]) => [k, toHex(x)]));
    const cpu: CpuState = {
      index: v.index,
      arch: 'x86_64',
      mode: x86Mode(registers),
      registers,
      raw: `(registers decoded from the migration stream's "cpu" device section, instance ${v.index}; no info registers text)`,
    };
    if (v.halted !== undefined) cpu.halted = v.halted;
    const info = fast.find((f) => f['cpu-index'] === v.index);
    if (info?.['qom-path'] !== undefined) cpu.qomPath = info['qom-path'];
    if (info?.['thread-id'] !== undefined) cpu.threadId = info['thread-id'];
    return cpu;
  });
  return { arch: 'x86_64', source: STREAM_SOURCE, cpus };
}
