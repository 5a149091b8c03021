/**
 * Locates the Linux printk ring buffer's text data ring in guest-physical memory using only the
 * guest's VMCOREINFO note (as a crash tool would), so the test can prove that a string found in
 * memory is a kernel log record and not, say, a copy in a shell's heap.
 */

/** x86_64 __START_KERNEL_map: kernel-image virtual address = this + physical address - phys_base. */
const START_KERNEL_MAP = 0xffffffff80000000n;

export interface VmcoreInfo {
  /** Raw "KEY=VALUE" lines. */
  fields: Map<string, string>;
  /** Value as written by the kernel: SYMBOL()/KERNELOFFSET are hex, NUMBER/OFFSET/SIZE decimal. */
  symbol(name: string): bigint;
  number(key: string): bigint;
}

export function parseVmcoreInfo(text: string): VmcoreInfo {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  const get = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined) throw new Error(`VMCOREINFO has no ${key}`);
    return v;
  };
  return {
    fields,
    symbol: (name) => BigInt(`0x${get(`SYMBOL(${name})`)}`),
    number: (key) => BigInt(get(key)),
  };
}

/** Physical address of a kernel-image (text/data/bss) virtual address. */
export function kernelImagePhys(info: VmcoreInfo, virt: bigint): bigint {
  if (virt < START_KERNEL_MAP) throw new Error(`0x${virt.toString(16)} is not a kernel-image address`);
  return virt - START_KERNEL_MAP + info.number('NUMBER(phys_base)');
}

/**
 * `prb` points at the ring buffer (printk_rb_static while the boot-time buffer is in use, which it
 * is for a small guest); its text_data_ring holds `1 << size_bits` bytes at `data`.
 * `readU64(phys)` reads a little-endian 64-bit value of guest-physical memory.
 */
export async function printkTextRing(info: VmcoreInfo, readU64: (phys: bigint) => Promise<bigint>): Promise<{ start: bigint; length: bigint }> {
  const ringbuffer = await readU64(kernelImagePhys(info, info.symbol('prb')));
  const dataRing = kernelImagePhys(info, ringbuffer) + info.number('OFFSET(printk_ringbuffer.text_data_ring)');
  const sizeBits = (await readU64(dataRing + info.number('OFFSET(prb_data_ring.size_bits)'))) & 0xffffffffn;
  const data = await readU64(dataRing + info.number('OFFSET(prb_data_ring.data)'));
  return { start: kernelImagePhys(info, data), length: 1n << sizeBits };
}
