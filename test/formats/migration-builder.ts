/**
 * Builds migration streams byte by byte the way QEMU 7.2 lays them out (savevm.c, ram.c), for the
 * parser tests: a valid one to start from, and the pieces to break it with.
 */
const u8 = (v: number): Buffer => Buffer.from([v]);
const be32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const be64 = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
};
const str8 = (s: string): Buffer => Buffer.concat([u8(Buffer.byteLength(s, 'latin1')), Buffer.from(s, 'latin1')]);

export const header = (): Buffer => Buffer.concat([Buffer.from('QEVM'), be32(3), u8(7), be32(13), Buffer.from('pc-i440fx-7.2')]);
export const ramStart = (id = 2): Buffer => Buffer.concat([u8(1), be32(id), str8('ram'), be32(0), be32(4)]);
export const ramPart = (id = 2): Buffer => Buffer.concat([u8(2), be32(id)]);
export const footer = (id = 2): Buffer => Buffer.concat([u8(0x7e), be32(id)]);
export const eos = (): Buffer => be64(0x10n);

export function blockList(blocks: Array<[string, number]>, total?: number): Buffer {
  const sum = total ?? blocks.reduce((s, [, n]) => s + n, 0);
  return Buffer.concat([be64(BigInt(sum) | 0x04n), ...blocks.map(([id, n]) => Buffer.concat([str8(id), be64(BigInt(n))]))]);
}

export function page(offset: number, data: Buffer, block?: string): Buffer {
  const flags = block === undefined ? 0x08n | 0x20n : 0x08n;
  return Buffer.concat([be64(BigInt(offset) | flags), block === undefined ? Buffer.alloc(0) : str8(block), data]);
}

export function fill(offset: number, byte: number, block?: string): Buffer {
  const flags = block === undefined ? 0x02n | 0x20n : 0x02n;
  return Buffer.concat([be64(BigInt(offset) | flags), block === undefined ? Buffer.alloc(0) : str8(block), u8(byte)]);
}

export function rawRecord(word: bigint, rest: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([be64(word), rest]);
}

/** vmstate_segment: how both cpus below describe an entry of env.segs. */
const SEGMENT = { vmsd_name: 'segment', version: 1, fields: [
  { name: 'selector', type: 'uint32', size: 4 }, { name: 'base', type: 'uint64', size: 8 }, { name: 'limit', type: 'uint32', size: 4 }, { name: 'flags', type: 'uint32', size: 4 },
] };

/** A "cpu" device's state: its vmdesc fields (and subsections) and the bytes of its section body. */
export interface CpuSection {
  fields: object[];
  subsections?: object[];
  body: Buffer;
}

/** The end of a stream: the device section of `cpu` ("cpu" instance 0, section id 3), EOF and the vmdesc. */
export function deviceTail(cpu: CpuSection = smallCpu()): Buffer {
  const { body, ...vmdesc } = cpu;
  const json = Buffer.from(JSON.stringify({ page_size: 4096, devices: [{ name: 'cpu', instance_id: 0, vmsd_name: 'cpu', version: 12, ...vmdesc }] }));
  return Buffer.concat([u8(4), be32(3), str8('cpu'), be32(0), be32(12), body, footer(3), u8(0), u8(6), be32(json.length), json]);
}

/** A small "cpu" with three fields (env.regs, env.eip, one segment, env.a20_mask) and a subsection (env.eflags). */
export function smallCpu(regs: bigint[] = [0x1111n, 0x2222n], flags = 0x46n): CpuSection {
  return {
    fields: [
      { name: 'env.regs', array_len: regs.length, type: 'uint64', size: 8 },
      { name: 'env.eip', type: 'uint64', size: 8 },
      { name: 'env.segs', array_len: 1, type: 'struct', size: 20, struct: SEGMENT },
      { name: 'env.a20_mask', type: 'int32', size: 4 },
    ],
    subsections: [{ vmsd_name: 'cpu/extra', version: 1, fields: [{ name: 'env.eflags', type: 'uint64', size: 8 }] }],
    body: Buffer.concat([
      ...regs.map(be64),
      be64(0x7c60n),
      be32(0x1234), be64(0x12340n), be32(0xffff), be32(0x9300),
      be32(0xffffffff),
      u8(5), str8('cpu/extra'), be32(1), be64(flags),
    ]),
  };
}

/** A complete small stream: two blocks, pages in and out of order, a fill page, device state. */
export function validStream(): { stream: Buffer; a: Buffer; b: Buffer } {
  const a = Buffer.alloc(4096, 0xaa);
  const b = Buffer.alloc(4096);
  b.write('page b of rom', 100);
  const stream = Buffer.concat([
    header(),
    ramStart(),
    blockList([['pc.ram', 4 * 4096], ['pc.rom', 4096]]),
    eos(),
    footer(),
    ramPart(),
    page(2 * 4096, a, 'pc.ram'),
    fill(0, 0),
    fill(3 * 4096, 0x5a),
    page(0, b, 'pc.rom'),
    page(4096, a, 'pc.ram'),
    eos(),
    footer(),
    deviceTail(),
  ]);
  return { stream, a, b };
}

/**
 * The device state of one x86 vCPU as vmstate_x86_cpu names its fields (only those the decoder maps
 * into the registers a capture requires), plus EOF and the vmdesc: enough for a whole snapshot
 * capture against a fake QEMU.
 */
export function x86CpuTail(regs: { rax?: bigint; rsp?: bigint; rip?: bigint; rflags?: bigint; cr0?: bigint; cr3?: bigint; cs?: number } = {}): Buffer {
  const fields = [
    { name: 'env.regs', array_len: 16, type: 'uint64', size: 8 },
    { name: 'env.eip', type: 'uint64', size: 8 },
    { name: 'env.eflags', type: 'uint64', size: 8 },
    { name: 'env.segs', array_len: 6, type: 'struct', size: 20, struct: SEGMENT },
    { name: 'env.cr', array_len: 5, type: 'uint64', size: 8 },
    { name: 'env.hflags', type: 'uint32', size: 4 },
    { name: 'env.a20_mask', type: 'int32', size: 4 },
  ];
  const gprs = Array.from({ length: 16 }, (_, i) => (i === 0 ? regs.rax ?? 0n : i === 4 ? regs.rsp ?? 0x7c00n : 0n));
  const segs = Array.from({ length: 6 }, (_, i) => Buffer.concat([be32(i === 1 ? regs.cs ?? 8 : 0x10), be64(0n), be32(0xffffffff), be32(0x00cf9300)]));
  const crs = [regs.cr0 ?? 0x11n, 0n, 0n, regs.cr3 ?? 0n, 0n];
  const body = Buffer.concat([...gprs.map(be64), be64(regs.rip ?? 0x7c60n), be64(regs.rflags ?? 0x46n), ...segs, ...crs.map(be64), be32(0), be32(0xffffffff)]);
  return deviceTail({ fields, body });
}

/** A whole background-snapshot stream of one zero-filled RAM block `pages` pages long and one x86 vCPU. */
export function snapshotStream(block: string, pages: number, cpu: Buffer = x86CpuTail()): Buffer {
  const records = [fill(0, 0, block)];
  for (let p = 1; p < pages; p++) records.push(fill(p * 4096, 0));
  return Buffer.concat([header(), ramStart(), blockList([[block, pages * 4096]]), eos(), footer(), ramPart(), ...records, eos(), footer(), cpu]);
}
