/**
 * The dump's SHA-256 in an imported bundle's manifest comes from the reads the import makes
 * (formats/file-digest.ts), not a second pass over the file. It must still be exactly what
 * `sha256sum` prints: for ELF dumps whose PT_LOADs are out of file order and leave gaps (bytes no
 * load covers, before, between and after them), for kdump files (two windows reading at once) and
 * for flattened streams, and for reads in any order through FileDigest itself.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader, type Manifest, SECTION } from '../../src/bundle';
import { compressionCodec } from '../../src/bundle/codec';
import { FileDigest } from '../../src/formats/file-digest';
import { FileWindow } from '../../src/formats/file-window';
import { importDump } from '../../src/interop/import';
import { prng } from '../bundle/util';
import { runCli } from '../helpers/cli';
import { vmpm, vmpmJson } from './tools';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-import-digest-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const p = (name: string): string => join(dir, name);
const MiB = 1024 * 1024;

function sha256sum(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

interface Load {
  paddr: number;
  offset: number;
  size: number;
}

/** An ELF64 core (x86-64, no notes) whose program headers list `loads` in the order given; every other byte is random. */
function elfCore(file: string, size: number, loads: Load[]): Buffer {
  const b = randomBytes(size);
  b.fill(0, 0, 64 + 56 * loads.length);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(4, 16); // ET_CORE
  b.writeUInt16LE(62, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32); // e_phoff
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(loads.length, 56);
  loads.forEach((l, i) => {
    const at = 64 + 56 * i;
    b.writeUInt32LE(1, at); // PT_LOAD
    b.writeBigUInt64LE(BigInt(l.offset), at + 8);
    b.writeBigUInt64LE(BigInt(l.paddr), at + 16);
    b.writeBigUInt64LE(BigInt(l.paddr), at + 24);
    b.writeBigUInt64LE(BigInt(l.size), at + 32);
    b.writeBigUInt64LE(BigInt(l.size), at + 40);
  });
  writeFileSync(file, b);
  return b;
}

async function importedSha(dump: string, out: string): Promise<string> {
  const r = await vmpmJson<{ sha256: string }>(['import', dump, '-o', out]);
  const reader = await BundleReader.open(out);
  try {
    const manifest = await reader.json<Manifest>(SECTION.manifest);
    assert.equal(manifest.import?.sha256, r.sha256);
  } finally {
    await reader.close();
  }
  return r.sha256;
}

describe('import: the dump SHA-256 from the same reads', () => {
  it('ELF with PT_LOADs out of file order, gaps before, between and after them, larger than the read window', async () => {
    // Program headers in neither file nor physical order; 20 MiB of random bytes around them.
    const loads: Load[] = [
      { paddr: 0x10_0000, offset: 9 * MiB + 4096, size: 6 * MiB },
      { paddr: 0x100_0000, offset: 8192, size: 3 * MiB },
      { paddr: 0x400_0000, offset: 4 * MiB + 12288, size: 2 * MiB + 8192 },
    ];
    const bytes = elfCore(p('ooo.elf'), 20 * MiB + 777, loads);
    const sha = await importedSha(p('ooo.elf'), p('ooo.vmpm'));
    assert.equal(sha, sha256sum(p('ooo.elf')));
    // And the memory itself landed where the loads say.
    const reader = await BundleReader.open(p('ooo.vmpm'));
    try {
      for (const l of loads) {
        const got = await reader.read(BigInt(l.paddr), l.size);
        assert.ok(got.equals(bytes.subarray(l.offset, l.offset + l.size)), `load at 0x${l.paddr.toString(16)}`);
      }
    } finally {
      await reader.close();
    }
  });

  it('ELF: the import reads the dump once, not once more for the digest (bytes read by the process, /proc/self/io rchar)', async () => {
    // In this process, so every read the import makes (its threads included) is counted. Loads in
    // file order with gaps, as QEMU writes them; the gaps are read for the digest alone.
    const size = 24 * MiB;
    elfCore(p('once.elf'), size, [
      { paddr: 0, offset: MiB, size: 8 * MiB },
      { paddr: 0x100_0000, offset: 10 * MiB, size: 12 * MiB },
    ]);
    const rchar = (): number => Number(/^rchar:\s*(\d+)/m.exec(readFileSync('/proc/self/io', 'latin1'))![1]);
    await importDump(p('once.elf'), { output: p('once-warm.vmpm') }); // modules and codec loaded
    const before = rchar();
    const r = await importDump(p('once.elf'), { output: p('once.vmpm') });
    const read = rchar() - before;
    assert.equal(r.sha256, sha256sum(p('once.elf')));
    // Re-reading the file for the digest made this about twice the file's size.
    assert.ok(read < size * 1.25, `the import read ${read} bytes of a ${size}-byte dump`);
  });

  it('ELF whose only load sits at the end, after a large unread gap', async () => {
    elfCore(p('tail.elf'), 12 * MiB, [{ paddr: 0x20_0000, offset: 11 * MiB, size: MiB }]);
    assert.equal(await importedSha(p('tail.elf'), p('tail.vmpm')), sha256sum(p('tail.elf')));
  });

  it('kdump (header, bitmap and descriptors read beside the page data) and the same file as a flattened stream', async () => {
    await vmpm(['export', SAMPLE, '--format', 'kdump', '-o', p('s.kdump')]);
    assert.equal(await importedSha(p('s.kdump'), p('s.vmpm')), sha256sum(p('s.kdump')));
    const kdump = readFileSync(p('s.kdump'));
    const head = Buffer.alloc(4096);
    head.write('makedumpfile', 0, 'latin1');
    head.writeBigInt64BE(1n, 16);
    head.writeBigInt64BE(1n, 24);
    const parts = [head];
    const offsets: number[] = [];
    for (let off = 0; off < kdump.length; off += 40_000) offsets.push(off);
    for (const off of offsets.reverse()) {
      const data = kdump.subarray(off, off + 40_000);
      const rh = Buffer.alloc(16);
      rh.writeBigInt64BE(BigInt(off), 0);
      rh.writeBigInt64BE(BigInt(data.length), 8);
      parts.push(rh, data);
    }
    parts.push(Buffer.alloc(16, 0xff));
    writeFileSync(p('s.flat'), Buffer.concat(parts));
    assert.equal(await importedSha(p('s.flat'), p('s-flat.vmpm')), sha256sum(p('s.flat')));
  });
});

describe('import: the manifest names the zstd that wrote the frames (host.codec), as a capture does', () => {
  it('the default path, and the portable one when VMPM_CODEC=portable forces it', async () => {
    elfCore(p('codec.elf'), 2 * MiB, [{ paddr: 0, offset: 4096, size: MiB }]);
    const codecOf = async (out: string): Promise<string | undefined> => {
      const reader = await BundleReader.open(out);
      try {
        return (await reader.json<Manifest>(SECTION.manifest)).host.codec;
      } finally {
        await reader.close();
      }
    };
    await vmpm(['import', p('codec.elf'), '-o', p('codec.vmpm')]);
    assert.equal(await codecOf(p('codec.vmpm')), compressionCodec().name);
    const r = await runCli(['import', p('codec.elf'), '-o', p('codec-portable.vmpm')], { env: { VMPM_CODEC: 'portable' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match((await codecOf(p('codec-portable.vmpm'))) ?? '', /^zstd-codec .*WebAssembly/);
  });
});

describe('FileDigest', () => {
  const size = 3 * MiB + 12345;
  const bytes = randomBytes(size);
  const file = p('digest.bin');
  writeFileSync(file, bytes);
  const want = createHash('sha256').update(bytes).digest('hex');

  /** Feeds `pieces` (offset, length) in the order given; returns the digest and what it read itself. */
  async function digestOf(pieces: Array<[number, number]>, maxPending?: number): Promise<{ hex: string; readHere: number }> {
    const fh = await open(file, 'r');
    try {
      const d = new FileDigest(fh, size, file, maxPending);
      // Views of a buffer that is scribbled over after each call, as a read window's are.
      const scratch = Buffer.alloc(2 * MiB);
      for (const [off, len] of pieces) {
        bytes.copy(scratch, 0, off, off + len);
        await d.add(off, scratch.subarray(0, len));
        scratch.fill(0xee, 0, len);
      }
      return { hex: await d.digest(), readHere: d.bytesReadHere };
    } finally {
      await fh.close();
    }
  }

  it('in file order, covering everything: reads nothing itself', async () => {
    const pieces: Array<[number, number]> = [];
    for (let off = 0; off < size; off += MiB) pieces.push([off, Math.min(MiB, size - off)]);
    const r = await digestOf(pieces);
    assert.equal(r.hex, want);
    assert.equal(r.readHere, 0);
  });

  it('nothing read: the whole file', async () => {
    const r = await digestOf([]);
    assert.equal(r.hex, want);
    assert.equal(r.readHere, size);
  });

  for (const maxPending of [0, 64 * 1024, 16 * MiB]) {
    it(`random pieces in random order, overlapping and with gaps (reorder buffer ${maxPending} bytes)`, async () => {
      const rand = prng(7 + maxPending);
      for (let round = 0; round < 8; round++) {
        const pieces: Array<[number, number]> = [];
        for (let i = 0; i < 40; i++) {
          const off = Math.floor(rand() * size);
          pieces.push([off, Math.min(size - off, 1 + Math.floor(rand() * 300_000))]);
        }
        const r = await digestOf(pieces, maxPending);
        assert.equal(r.hex, want, `round ${round}`);
        assert.ok(r.readHere <= size);
      }
    });
  }

  it('sequential reads that straddle window ends, through read windows with read-ahead: every byte read from the file once', async () => {
    const fh = await open(file, 'r');
    try {
      let fileReads = 0;
      // Counts what the window asks of the file (it only ever calls read()).
      const counted = { read: (buf: Buffer, at: number, length: number, position: number) => ((fileReads += length), fh.read(buf, at, length, position)) };
      const d = new FileDigest(fh, size, file);
      const w = new FileWindow(counted as unknown as typeof fh, size, file, 256 * 1024).hashInto(d).readAhead();
      for (let off = 1234; off < size; off += 100_000) {
        const n = Math.min(100_000, size - off);
        const got = await w.read(off, n, 'piece');
        assert.ok(got.equals(bytes.subarray(off, off + n)), `read at ${off}`);
      }
      assert.equal(await d.digest(), want);
      // Before, a read across a window's end started a new window at its own offset: the read-ahead
      // was abandoned and read again, about twice the file in all.
      assert.ok(fileReads <= size, `the windows read ${fileReads} bytes of a ${size}-byte file`);
      assert.ok(d.bytesReadHere <= 1234, `the digest read ${d.bytesReadHere} bytes itself`);
    } finally {
      await fh.close();
    }
  });

  it('through read windows with read-ahead, moving backwards and forwards', async () => {
    const fh = await open(file, 'r');
    try {
      const d = new FileDigest(fh, size, file);
      const w = new FileWindow(fh, size, file, 256 * 1024).hashInto(d).readAhead();
      const rand = prng(99);
      for (let i = 0; i < 200; i++) {
        const off = i < 100 ? i * 20_000 : Math.floor(rand() * (size - 5000));
        const got = await w.read(off, 5000, 'piece');
        assert.ok(got.equals(bytes.subarray(off, off + 5000)), `read ${i} at ${off}`);
      }
      assert.equal(await d.digest(), want);
    } finally {
      await fh.close();
    }
  });
});
