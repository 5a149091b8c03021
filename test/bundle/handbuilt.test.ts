import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { BundleFormatError, BundleReader } from '../../src/bundle';
import { compressFrame } from '../../src/bundle/codec';
import { parseTrailer } from '../../src/bundle/structure';
import { buildBundle, type HandBundle } from './handbuilt';
import { tempDir } from './util';

const pageA = Buffer.alloc(4096, 'page A, written by hand from docs/bundle-format.md. ');
const pageB = Buffer.alloc(4096, 'second page; ');

async function specBundle(): Promise<HandBundle> {
  return {
    sections: [
      { name: 'manifest', type: 1, data: Buffer.from('{"origin":"synthetic","answer":"0x2a"}') },
      { name: 'future-thing', type: 99, data: Buffer.from('a section type from a newer minor version') },
      { name: 'attachment/note.txt', type: 2, data: Buffer.from('hello\n') },
    ],
    frames: [{ pages: [pageA, pageB], compressed: await compressFrame(Buffer.concat([pageA, pageB]), 3) }],
    ranges: [
      // zero page, A, B, A again (dedup: same slot), then a 100-byte partial page of A's first bytes
      { start: 0x7000n, length: 4n * 4096n, pages: ['zero', 0, 1, 0], name: 'low' },
      { start: 0x1_0000_0000n, length: 100n, pages: [0] },
    ],
  };
}

async function open(bytes: Buffer, tmp: ReturnType<typeof tempDir>, name = 'b.vmpm'): Promise<BundleReader> {
  const path = tmp.path(name);
  writeFileSync(path, bytes);
  return BundleReader.open(path);
}

test('a bundle built byte by byte from the spec opens, reads and verifies; unknown section types are skipped but still verified', async () => {
  const tmp = tempDir();
  try {
    const r = await open(buildBundle(await specBundle()), tmp);
    assert.deepEqual(r.version, { major: 1, minor: 0 });
    assert.deepEqual(r.sections().map((s) => [s.name, s.type]), [['manifest', 'json'], ['attachment/note.txt', 'raw']]);
    assert.deepEqual(await r.json('manifest'), { origin: 'synthetic', answer: '0x2a' });
    assert.equal((await r.raw('attachment/note.txt')).toString(), 'hello\n');
    assert.deepEqual(r.ranges(), [
      { start: 0x7000n, length: 0x4000n, pages: 4, zeroPages: 1, name: 'low' },
      { start: 0x1_0000_0000n, length: 100n, pages: 1, zeroPages: 0 },
    ]);
    assert.deepEqual(await r.read(0x7000n, 4 * 4096), Buffer.concat([Buffer.alloc(4096), pageA, pageB, pageA]));
    assert.deepEqual(await r.read(0x1_0000_0000n, 100), pageA.subarray(0, 100));
    await assert.rejects(r.read(0x1_0000_0000n + 99n, 2), /0x100000064 is not captured/);
    assert.deepEqual(r.stats(), { capturedBytes: 0x4064n, pages: 5, zeroPages: 1, dataPages: 4, uniquePages: 2, frames: 1, compressedBytes: r.stats().compressedBytes });
    const v = await r.verify();
    assert.deepEqual(v.problems, []);
    assert.equal(v.ok, true);
    await r.close();
  } finally {
    tmp.cleanup();
  }
});

test('a newer major format version is refused with a message naming both versions', async () => {
  const tmp = tempDir();
  try {
    await assert.rejects(open(buildBundle({ ...(await specBundle()), major: 2, minor: 3 }), tmp), (err: Error) => {
      assert.ok(err instanceof BundleFormatError);
      assert.match(err.message, /format version 2\.3 is newer than this vmpm reads \(format 1\.x\)/);
      return true;
    });
    // A newer minor version of the same major opens.
    const r = await open(buildBundle({ ...(await specBundle()), minor: 7 }), tmp, 'minor.vmpm');
    assert.deepEqual(r.version, { major: 1, minor: 7 });
    await r.close();
  } finally {
    tmp.cleanup();
  }
});

/** Hostile trailers: valid digests, absurd values. Each must fail with a precise message and no big allocation. */
const hostile: Array<[string, (t: Buffer) => void, RegExp]> = [
  ['page count of 2^40', (t) => t.writeBigUInt64LE(1n << 40n, 16), /page count 1099511627776 does not fit/],
  ['section count of 2^32-1', (t) => t.writeUInt32LE(0xffffffff, 0), /counts .* need/],
  ['slot count of 2^31', (t) => t.writeUInt32LE(0x80000000, 12), /counts .* need/],
  ['section length of 2^63', (t) => t.writeBigUInt64LE(1n << 63n, 32 + 8), /section "manifest" at offset 32, 9223372036854775808 bytes, lies outside the body/],
  ['frame compressed length of 4 GiB-1', (t) => t.writeUInt32LE(0xffffffff, 32 + 3 * 64 + 2 * 40 + 8), /frame 0 at offset \d+, 4294967295 bytes, lies outside the body/],
  ['frame claiming 1000000 pages', (t) => t.writeUInt32LE(1000000, 32 + 3 * 64 + 2 * 40 + 20), /frame 0 holds 1000000 pages/],
  ['page index slot beyond the slots', (t) => t.writeUInt32LE(7, 32 + 3 * 64 + 2 * 40 + 56 + 4), /page index entry 1 refers to slot 7, but there are 2 slots/],
  ['range name outside the string table', (t) => t.writeUInt32LE(0xfffffff0, 32 + 3 * 64 + 32), /range 0 name at 4294967280\+3 is outside/],
  ['range at an unaligned address', (t) => t.writeBigUInt64LE(0x7001n, 32 + 3 * 64), /range 0 \(0x7001\+0x4000\) does not start on a page boundary/],
  ['range past 2^64', (t) => t.writeBigUInt64LE(0xffff_ffff_ffff_f000n, 32 + 3 * 64), /runs past the 64-bit address space/],
  ['wrong zero-page count', (t) => t.writeBigUInt64LE(3n, 32 + 3 * 64 + 24), /declares 3 zero pages, its page index has 1/],
];

for (const [what, edit, message] of hostile) {
  test(`a trailer with ${what} is rejected precisely without a large allocation`, async () => {
    const tmp = tempDir();
    try {
      const bytes = buildBundle({ ...(await specBundle()), editTrailer: (t) => (edit(t), t) });
      const before = process.memoryUsage().arrayBuffers;
      await assert.rejects(open(bytes, tmp), (err: Error) => {
        assert.ok(err instanceof BundleFormatError, String(err));
        assert.match(err.message, message);
        return true;
      });
      assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    } finally {
      tmp.cleanup();
    }
  });
}

test('a footer with a huge trailer length or offset is rejected before reading the trailer', async () => {
  const tmp = tempDir();
  try {
    const good = buildBundle(await specBundle());
    const footerAt = good.length - 96;
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 62n, footerAt + 8);
    await assert.rejects(open(huge, tmp, 'a.vmpm'), /trailer length 4611686018427387904 is out of bounds/);
    const moved = Buffer.from(good);
    moved.writeBigUInt64LE(0xffff_ffff_0000_0000n, footerAt);
    await assert.rejects(open(moved, tmp, 'b.vmpm'), /must end where the footer starts/);
    const badTrailer = Buffer.from(good);
    badTrailer[footerAt - 1]! ^= 1;
    await assert.rejects(open(badTrailer, tmp, 'c.vmpm'), /trailer \(offset \d+, \d+ bytes\) SHA-256 mismatch/);
    await assert.rejects(open(Buffer.from('not a bundle at all'.repeat(10)), tmp, 'd.vmpm'), /not a vmpm bundle \(header magic is/);
  } finally {
    tmp.cleanup();
  }
});

test('a section longer than 2^31-1 bytes is refused even when a (huge) body could hold it', async () => {
  const good = trailerOf(buildBundle(await specBundle()));
  const huge = trailerOf(buildBundle({ ...(await specBundle()), editTrailer: (t) => (t.writeBigUInt64LE(2n ** 31n, 32 + 8), t) }));
  // parseTrailer checks entries against the body end it is given: pretend the body is 8 GiB long.
  const bodyEnd = 8 * 2 ** 30;
  assert.doesNotThrow(() => parseTrailer('ok.vmpm', good, 32, bodyEnd));
  assert.throws(() => parseTrailer('big.vmpm', huge, 32, bodyEnd), (err: Error) => {
    assert.ok(err instanceof BundleFormatError);
    assert.match(err.message, /section "manifest" is 2147483648 bytes, over the 2147483647-byte limit/);
    return true;
  });
});

/** The trailer bytes of a bundle, located through its footer. */
function trailerOf(bundle: Buffer): Buffer {
  const footerAt = bundle.length - 96;
  return bundle.subarray(Number(bundle.readBigUInt64LE(footerAt)), footerAt);
}
