import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readElfCoreStream, PT_LOAD, PT_NOTE, type ElfSegment } from '../../src/formats/elf';
import { FifoReader, createFifoDir, makeFifo } from '../../src/capture/fifo';
import { describeRegions, intersectPlan } from '../../src/capture/plan';
import { VmpmError } from '../../src/util/errors';

/** A minimal ELF core: header, phdrs, then the segments' bytes at their offsets (with a gap). */
function buildElf(cls: 32 | 64, segments: Array<{ type: number; paddr: bigint; data: Buffer }>): Buffer {
  const ehsize = cls === 64 ? 64 : 52;
  const phentsize = cls === 64 ? 56 : 32;
  const header = Buffer.alloc(ehsize);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = cls === 64 ? 2 : 1;
  header[5] = 1;
  header[6] = 1;
  header.writeUInt16LE(4, 16); // ET_CORE
  header.writeUInt16LE(62, 18);
  const phoff = ehsize;
  let offset = phoff + phentsize * segments.length + 100; // a gap before the first segment
  const phdrs = Buffer.alloc(phentsize * segments.length);
  const offsets: number[] = [];
  segments.forEach((s, i) => {
    const o = i * phentsize;
    offsets.push(offset);
    if (cls === 64) {
      phdrs.writeUInt32LE(s.type, o);
      phdrs.writeBigUInt64LE(BigInt(offset), o + 8);
      phdrs.writeBigUInt64LE(s.paddr, o + 24);
      phdrs.writeBigUInt64LE(BigInt(s.data.length), o + 32);
      phdrs.writeBigUInt64LE(BigInt(s.data.length), o + 40);
    } else {
      phdrs.writeUInt32LE(s.type, o);
      phdrs.writeUInt32LE(offset, o + 4);
      phdrs.writeUInt32LE(Number(s.paddr), o + 12);
      phdrs.writeUInt32LE(s.data.length, o + 16);
      phdrs.writeUInt32LE(s.data.length, o + 20);
    }
    offset += s.data.length;
  });
  if (cls === 64) {
    header.writeBigUInt64LE(BigInt(phoff), 32);
    header.writeUInt16LE(ehsize, 52);
    header.writeUInt16LE(phentsize, 54);
    header.writeUInt16LE(segments.length, 56);
  } else {
    header.writeUInt32LE(phoff, 28);
    header.writeUInt16LE(ehsize, 40);
    header.writeUInt16LE(phentsize, 42);
    header.writeUInt16LE(segments.length, 44);
  }
  return Buffer.concat([header, phdrs, Buffer.alloc(100), ...segments.map((s) => s.data)]);
}

async function* inChunks(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

for (const cls of [64, 32] as const) {
  for (const chunk of [1, 7, 4096, 1 << 20]) {
    test(`ELF${cls} core stream in ${chunk}-byte chunks: notes verbatim, each PT_LOAD's bytes at its paddr`, async () => {
      const note = Buffer.from('note-bytes-verbatim');
      const ram0 = Buffer.alloc(8192, 0xab);
      const ram1 = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
      const elf = buildElf(cls, [
        { type: PT_NOTE, paddr: 0n, data: note },
        { type: PT_LOAD, paddr: 0x1000n, data: ram0 },
        { type: PT_LOAD, paddr: 0x100000n, data: ram1 },
      ]);
      const loads: Array<{ seg: ElfSegment; data: Buffer }> = [];
      const notes: Buffer[] = [];
      const header = await readElfCoreStream(inChunks(elf, chunk), {
        onNote: (_s, d) => void notes.push(Buffer.from(d)),
        onLoad: async (seg, data) => {
          const parts: Buffer[] = [];
          for await (const c of data) parts.push(Buffer.from(c));
          loads.push({ seg, data: Buffer.concat(parts) });
        },
      });
      assert.equal(header.class, cls);
      assert.deepEqual(notes, [note]);
      assert.deepEqual(loads.map((l) => l.seg.paddr), [0x1000n, 0x100000n]);
      assert.ok(loads[0]!.data.equals(ram0));
      assert.ok(loads[1]!.data.equals(ram1));
    });
  }
}

test('a truncated ELF stream (QEMU died) is a one-line error, not a hang', async () => {
  const elf = buildElf(64, [{ type: PT_LOAD, paddr: 0n, data: Buffer.alloc(65536, 1) }]);
  await assert.rejects(
    readElfCoreStream(inChunks(elf.subarray(0, elf.length - 1000), 4096), {
      onNote: () => undefined,
      onLoad: async (_s, data) => {
        for await (const c of data) void c;
      },
    }),
    (e: unknown) => e instanceof VmpmError && /ended early/.test(e.message) && !e.message.includes('\n'),
  );
});

test('garbage instead of an ELF file is rejected by its magic', async () => {
  await assert.rejects(
    readElfCoreStream(inChunks(Buffer.alloc(200, 0x41), 64), { onNote: () => undefined, onLoad: async () => undefined }),
    /not an ELF file/,
  );
});

test('a FIFO whose writer never comes fails after the bounded wait (the read end is open, nothing blocks)', async () => {
  const dir = await createFifoDir();
  try {
    const path = join(dir.path, 'never.fifo');
    await makeFifo(path);
    const reader = new FifoReader(path, { openTimeoutMs: 200 });
    const t0 = Date.now();
    await assert.rejects(
      (async () => {
        for await (const c of reader.chunks()) void c;
      })(),
      /did not open the memory FIFO .* within 200 ms/,
    );
    // Bounded, not hung (no sub-second wall-clock bound: the machine is shared).
    assert.ok(Date.now() - t0 < 30_000);
  } finally {
    await dir.remove();
  }
  assert.equal(existsSync(dir.path), false);
});

test('a FIFO streams what the writer sends, in order, until the writer closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fifo-test-'));
  try {
    const path = join(dir, 'data.fifo');
    await makeFifo(path);
    const reader = new FifoReader(path);
    const payload = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 7) & 0xff));
    const writing = (async () => {
      const w = await open(path, 'w');
      await w.write(payload);
      await w.close();
    })();
    const parts: Buffer[] = [];
    for await (const c of reader.chunks()) parts.push(c);
    await writing;
    assert.ok(Buffer.concat(parts).equals(payload));
    assert.equal(reader.bytesRead, payload.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a writer that keeps the FIFO open but stops writing fails after the idle bound; a slow consumer does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fifo-test-'));
  try {
    const stalled = join(dir, 'stalled.fifo');
    await makeFifo(stalled);
    const reader = new FifoReader(stalled, { idleTimeoutMs: 300 });
    const writer = (async () => {
      const w = await open(stalled, 'w');
      await w.write(Buffer.alloc(10_000, 1));
      return w; // kept open and silent, like a SIGSTOPped QEMU
    })();
    const t0 = Date.now();
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const c of reader.chunks()) received += c.length;
      })(),
      (e: unknown) => e instanceof VmpmError && /QEMU wrote nothing into the memory FIFO .* for 300 ms after 10000 bytes/.test(e.message),
    );
    assert.equal(received, 10_000);
    assert.ok(Date.now() - t0 < 30_000);
    await (await writer).close();

    // A consumer that takes longer than the bound per chunk is not the writer's silence. The bound is
    // a second (the writer is a threadpool thread of this process: at 100 ms, a loaded machine could
    // delay it past the bound), the consumer takes three.
    const slow = join(dir, 'slow.fifo');
    await makeFifo(slow);
    const slowReader = new FifoReader(slow, { idleTimeoutMs: 1000 });
    const payload = Buffer.alloc(256 * 1024, 7);
    const writing = (async () => {
      const w = await open(slow, 'w');
      await w.write(payload);
      await w.close();
    })();
    let total = 0;
    let first = true;
    for await (const c of slowReader.chunks()) {
      total += c.length;
      if (first) await new Promise((r) => setTimeout(r, 3000));
      first = false;
    }
    await writing;
    assert.equal(total, payload.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plan helpers: intersections keep their plan range; regions are marked captured only when fully covered', () => {
  const plan = [
    { start: 0n, end: 0xa0000n, name: 'pc.ram' },
    { start: 0x100000n, end: 0x4000000n, name: 'pc.ram' },
  ];
  assert.deepEqual(intersectPlan(plan, 0x90000n, 0x200000n), [
    { start: 0x90000n, end: 0xa0000n, name: 'pc.ram', planIndex: 0 },
    { start: 0x100000n, end: 0x200000n, name: 'pc.ram', planIndex: 1 },
  ]);
  const regions = describeRegions(
    [
      { addressSpace: 'memory', name: 'pc.ram', kind: 'ram', start: 0n, end: 0xa0000n },
      { addressSpace: 'memory', name: 'vga', kind: 'i/o', start: 0xa0000n, end: 0xc0000n },
      { addressSpace: 'memory', name: 'pc.bios', kind: 'rom', start: 0xfffc0000n, end: 0x100000000n },
      { addressSpace: 'I/O', name: 'io', kind: 'i/o', start: 0n, end: 0x10000n },
    ],
    [{ start: 0n, end: 0xa0000n }],
  );
  assert.deepEqual(
    regions.map((r) => [r.name, r.captured]),
    [
      ['pc.ram', true],
      ['vga', false],
      ['pc.bios', false],
    ],
  );
});
