/**
 * x86 vCPU registers from the `cpu` device sections of a migration stream (QEMU target/i386/machine.c
 * vmstate_x86_cpu field names), under the canonical names `info registers` parsing uses (rax..r15,
 * rip, rflags, <seg>.selector/base/limit/flags, gdt/idt base and limit, cr0 cr2 cr3 cr4, efer,
 * dr0-3 dr6 dr7, mxcsr, fcw fsw ftw, cpl a20 smm, xmm0..7 or xmm0..15), with the values `info
 * registers` would print (target/i386/cpu-dump.c: segment flags masked with 0x00ffff00, CPL, A20 and
 * SMM taken from hflags and a20_mask the way it does), so the two sources can be compared name by
 * name and a capture can use either; `kernel_gs_base` too, which only the stream (and QEMU's ELF note)
 * has. `halted` comes from the vCPU's `cpu_common` section.
 * Not decoded, so absent: st0-7 (fpregs arrive as raw bytes), ymm/zmm/k (AVX state lives in
 * subsections).
 */
import type { DeviceState, FieldValue } from './device-state';

/** env.regs order (R_EAX .. R_R15). */
const GPR = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
/** env.segs order (R_ES .. R_GS). */
const SEGS = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

/** hflags bits (target/i386/cpu.h): HF_CPL_MASK, HF_CS64_SHIFT, HF_SMM_SHIFT. */
const HF_CPL_MASK = 3n;
const HF_CS64 = 15n;
const HF_SMM = 19n;

export interface VmstateCpu {
  /** The section's instance id: QEMU's cpu index. */
  index: number;
  registers: Record<string, bigint>;
  /** cpu_common's `halted`, when the stream has that section for this vCPU. */
  halted?: boolean;
}

export function x86CpusFromDeviceState(state: DeviceState): VmstateCpu[] {
  return state.sections
    .filter((s) => s.name === 'cpu')
    .map((s) => {
      const cpu: VmstateCpu = { index: s.instanceId, registers: x86Registers(s.fields) };
      const halted = state.sections.find((c) => c.name === 'cpu_common' && c.instanceId === s.instanceId)?.fields.get('halted');
      if (typeof halted === 'bigint') cpu.halted = halted !== 0n;
      return cpu;
    })
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
  // `info registers` prints a segment's flags as `flags & 0x00ffff00`.
  for (const name of [...SEGS, 'ldtr', 'tr']) {
    const v = out[`${name}.flags`];
    if (v !== undefined) out[`${name}.flags`] = v & 0x00ffff00n;
  }
  seg('tr', 'env.tr');
  for (const t of ['gdt', 'idt']) {
    put(`${t}.base`, `env.${t}.base`);
    put(`${t}.limit`, `env.${t}.limit`);
  }
  for (const n of [0, 2, 3, 4]) put(`cr${n}`, `env.cr[${n}]`);
  put('efer', 'env.efer');
  for (let i = 0; i < 8; i++) if (i !== 4 && i !== 5) put(`dr${i}`, `env.dr[${i}]`);
  put('mxcsr', 'env.mxcsr');
  // Not printed by `info registers`, but what QEMU's own dump puts in its QEMUCPUState note.
  put('kernel_gs_base', 'env.kernelgsbase');
  // cpu_pre_save computes fpus_vmstate and fptag_vmstate exactly as cpu-dump.c computes FSW and FTW.
  put('fcw', 'env.fpuc');
  put('fsw', 'env.fpus_vmstate');
  put('ftw', 'env.fptag_vmstate');
  const hflags = f.get('env.hflags');
  if (typeof hflags === 'bigint') {
    out.cpl = hflags & HF_CPL_MASK;
    out.smm = (hflags >> HF_SMM) & 1n;
    // As cpu-dump.c: 16 XMM registers with a 64-bit code segment, else 8.
    const count = (hflags >> HF_CS64) & 1n ? 16 : 8;
    for (let i = 0; i < count; i++) {
      const lo = f.get(`env.xmm_regs[0][${i}]._q_ZMMReg[0]`);
      const hi = f.get(`env.xmm_regs[0][${i}]._q_ZMMReg[1]`);
      if (typeof lo === 'bigint' && typeof hi === 'bigint') out[`xmm${i}`] = (BigInt.asUintN(64, hi) << 64n) | BigInt.asUintN(64, lo);
    }
  }
  const a20 = f.get('env.a20_mask');
  if (typeof a20 === 'bigint') out.a20 = (BigInt.asUintN(32, a20) >> 20n) & 1n;
  return out;
}
