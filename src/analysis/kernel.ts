/**
 * A Linux guest kernel as seen in one bundle: guest-physical memory, each vCPU's address space, the
 * VMCOREINFO note, and the kernel's symbol table (kallsyms decoded from memory, or a System.map). The
 * translate, read --virt, symbol, stack and regs commands, and the report, build on this.
 */
import { readFileSync, statSync } from 'node:fs';
import { VmpmError, describeError } from '../util/errors';
import { toHex } from '../util/hex';
import type { CpuState, CpusSection } from '../bundle/schema';
import { SECTION } from '../bundle/schema';
import { bundlePhysicalMemory, describeVmcoreinfoSource, findVmcoreinfo, NoLinuxKernelError, type PhysicalMemory, type Vmcoreinfo } from '../guestos';
import { kernelImagePhys, vcpuAddressSpace } from '../guestos/linux/address-space';
import { decodeKallsyms, type KallsymsInfo } from '../guestos/linux/kallsyms';
import type { SymbolTable } from '../guestos/linux/symbols';
import { MAX_SYSTEM_MAP_BYTES, parseSystemMap } from '../guestos/linux/system-map';
import { readVirtual, type AddressSpace } from '../guestos/linux/vmem';
import type { AnalysisBundle } from './source';

export interface LoadedSymbols {
  table: SymbolTable;
  /** "kallsyms in guest memory (VMCOREINFO)" or "System.map FILE". */
  source: string;
  kallsyms?: KallsymsInfo;
  ms: number;
}

export interface KernelView {
  readonly bundle: AnalysisBundle;
  readonly memory: PhysicalMemory;
  readonly vmcoreinfo: Vmcoreinfo | undefined;
  readonly cpus: CpuState[];
  /** The vCPU to use when none is named (the first captured one). */
  cpu(index?: number): CpuState;
  /** The address space vCPU `index` was using. */
  space(index?: number): AddressSpace;
  /** An address space that maps the kernel (the first vCPU whose tables map _stext, else VMCOREINFO's image map). */
  kernelSpace(): Promise<AddressSpace>;
  readKernel(virt: bigint, length: number): Promise<Buffer>;
  /** The kernel's symbols; memoized. Throws a VmpmError saying why there are none. */
  symbols(): Promise<LoadedSymbols>;
}

export interface KernelViewOptions {
  /** A System.map file to use instead of (or when there is no) kallsyms in memory. */
  systemMap?: string;
}

export async function openKernelView(bundle: AnalysisBundle, options: KernelViewOptions = {}): Promise<KernelView> {
  const memory = bundlePhysicalMemory({ path: bundle.path, ranges: () => bundle.ranges(), read: (a, n) => bundle.read(a, n) });
  // The bundle's section, else the kernel's own copy in RAM (validated against the image); none for a non-Linux guest.
  const vmcoreinfo = await findVmcoreinfo(bundle, memory).catch((err: unknown) => {
    if (err instanceof NoLinuxKernelError) return undefined;
    throw err;
  });
  const cpus = bundle.has(SECTION.cpus) ? ((await bundle.json<CpusSection>(SECTION.cpus)).cpus ?? []) : [];
  const spaces = new Map<number, AddressSpace>();
  let kernelSpace: Promise<AddressSpace> | undefined;
  let symbols: Promise<LoadedSymbols> | undefined;
  const view: KernelView = {
    bundle,
    memory,
    vmcoreinfo,
    cpus,
    cpu(index) {
      if (cpus.length === 0) throw new VmpmError(`${bundle.path} has no vCPU registers: no page-table root to translate from`);
      if (index === undefined) return cpus[0]!;
      const c = cpus.find((x) => x.index === index);
      if (c === undefined) throw new VmpmError(`no vCPU ${index} in this bundle (vCPUs captured: ${cpus.map((x) => x.index).join(', ')})`);
      return c;
    },
    space(index) {
      const c = view.cpu(index);
      let s = spaces.get(c.index);
      if (s === undefined) {
        s = vcpuAddressSpace(memory, c, vmcoreinfo);
        spaces.set(c.index, s);
      }
      return s;
    },
    kernelSpace() {
      kernelSpace ??= findKernelSpace(view);
      return kernelSpace;
    },
    async readKernel(virt, length) {
      return readVirtual(memory, await view.kernelSpace(), virt, length);
    },
    symbols() {
      symbols ??= loadSymbols(view, options);
      return symbols;
    },
  };
  return view;
}

/** The first vCPU whose page tables map the kernel's _stext where VMCOREINFO says it is. */
async function findKernelSpace(view: KernelView): Promise<AddressSpace> {
  const info = view.vmcoreinfo;
  const stext = info?.symbolIfAny('_stext');
  const problems: string[] = [];
  for (const c of view.cpus) {
    let space: AddressSpace;
    try {
      space = view.space(c.index);
      if (stext === undefined) return space;
      const t = await space.translate(stext);
      if (t.phys !== undefined && t.phys === kernelImagePhys(info!, c.arch, stext)) return space;
      problems.push(`vCPU ${c.index}: _stext ${t.phys === undefined ? 'not mapped' : `maps to ${toHex(t.phys)}`}`);
    } catch (err) {
      problems.push(`vCPU ${c.index}: ${describeError(err)}`);
    }
  }
  if (info !== undefined && stext !== undefined && view.cpus[0] !== undefined) {
    // No vCPU's tables are usable (e.g. all in real mode): use the kernel image's fixed mapping.
    const arch = view.cpus[0].arch;
    return {
      description: `kernel-image map from VMCOREINFO (no vCPU page tables map the kernel: ${problems.join('; ')})`,
      vcpuOwned: false,
      async translate(virt) {
        const phys = kernelImagePhys(info, arch, virt);
        return { virt, root: { phys: 0n, source: 'VMCOREINFO' }, mode: 'kernel-image map', levels: [], phys, pageSize: 4096n };
      },
    };
  }
  throw new VmpmError(`no vCPU's page tables map the kernel and there is no VMCOREINFO to locate it (${problems.join('; ') || 'no vCPUs'})`);
}

async function loadSymbols(view: KernelView, options: KernelViewOptions): Promise<LoadedSymbols> {
  const started = performance.now();
  const info = view.vmcoreinfo;
  if (options.systemMap !== undefined) {
    const path = options.systemMap;
    let text: string;
    try {
      if (statSync(path).size > MAX_SYSTEM_MAP_BYTES) throw new VmpmError(`${path} is larger than ${MAX_SYSTEM_MAP_BYTES} bytes: not a System.map`);
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (err instanceof VmpmError) throw err;
      throw new VmpmError(`--system-map ${path}: ${describeError(err)}`);
    }
    const table = parseSystemMap(text, path, { offset: info?.kernelOffset ?? 0n, stext: info?.symbolIfAny('_stext') });
    return { table, source: `System.map ${path}`, ms: performance.now() - started };
  }
  if (info === undefined) throw new VmpmError(`${view.bundle.path} has no VMCOREINFO (the guest ran without -device vmcoreinfo): no kernel symbols; use --system-map FILE`);
  const { table, kallsyms } = await decodeKallsyms(info, (virt, length) => view.readKernel(virt, length));
  // Say where VMCOREINFO came from when it is not the bundle's section (the kernel's copy found in RAM).
  const where = info.source.kind === 'section' ? 'VMCOREINFO' : `VMCOREINFO from ${describeVmcoreinfoSource(info.source)}`;
  return { table, source: `kallsyms in guest memory (located by ${where})`, kallsyms, ms: performance.now() - started };
}
