/**
 * x86 vCPU registers from the `cpu` device sections of a migration stream (QEMU target/i386/machine.c
 * vmstate_x86_cpu field names), under the canonical names `info registers` parsing uses (rax..r15,
 * rip, rflags, <seg>.selector/base/limit/flags, gdt/idt base and limit, cr0..cr4, efer, dr0..dr7),
 * so the two sources can be compared name by name.
 */
import type { DeviceState, FieldValue } from './device-state';

/** env.regs order (R_EAX .. R_R15). */
const GPR = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
/** env.segs order (R_ES .. R_GS). */
const SEGS = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

export interface VmstateCpu {
  /** The section's instance id: QEMU's cpu index. */
  index: number;
  registers: Record<string, bigint>;
}

export function x86CpusFromDeviceState(state: DeviceState): VmstateCpu[] {
  return state.sections
    .filter((s) => s.name === 'cpu')
    .map((s) => ({ index: s.instanceId, registers: x86Registers(s.fields) }))
    .sort((a, b) => a.index - b.index);
}

function x86Registers(f: Map<string, FieldValue>): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  const put = (name: string, path: string): void => {
    const v = f.get(path);
    if (typeof v === 'bigint') out[name] = BigInt.asUintN(64, v);
  };
  GPR.forEach((name, i) => put(name, `env.regs[${i}]`));
  put('rip', 'env.eip');
  put('rflags', 'env.eflags');
  const seg = (name: string, path: string): void => {
    for (const part of ['selector', 'base', 'limit', 'flags']) put(`${name}.${part}`, `${path}.${part}`);
  };
  SEGS.forEach((name, i) => seg(name, `env.segs[${i}]`));
  seg('ldtr', 'env.ldt');
  seg('tr', 'env.tr');
  for (const t of ['gdt', 'idt']) {
    put(`${t}.base`, `env.${t}.base`);
    put(`${t}.limit`, `env.${t}.limit`);
  }
  for (const n of [0, 2, 3, 4]) put(`cr${n}`, `env.cr[${n}]`);
  put('efer', 'env.efer');
  for (let i = 0; i < 8; i++) if (i !== 4 && i !== 5) put(`dr${i}`, `env.dr[${i}]`);
  put('mxcsr', 'env.mxcsr');
  return out;
}
