import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributeRanges, coalescePages, coveredBytes, mergeRuns, regionAt } from '../../src/analysis/ranges';
import { firstHole } from '../../src/analysis/read';
import { hexdump } from '../../src/cli/output/hexdump';
import { execFileSync } from 'node:child_process';
import { requireTools } from '../helpers/requirements';

test('pages coalesce into ranges only when they touch', () => {
  assert.deepEqual(coalescePages([0x0n, 0x1000n, 0x3000n, 0x4000n, 0x5000n, 0x10000n]), [
    { start: 0x0n, end: 0x2000n },
    { start: 0x3000n, end: 0x6000n },
    { start: 0x10000n, end: 0x11000n },
  ]);
  assert.deepEqual(coalescePages([]), []);
});

test('ranges are split at region boundaries and attributed; uncovered parts get region null', () => {
  const regions = [
    { name: 'low', kind: 'ram', start: 0x0n, end: 0xa0000n },
    { name: 'rom', kind: 'rom', start: 0xc0000n, end: 0x100000n },
  ];
  assert.deepEqual(attributeRanges([{ start: 0x9f000n, end: 0xc1000n }], regions), [
    { start: 0x9f000n, end: 0xa0000n, region: 'low', pages: 1 },
    { start: 0xa0000n, end: 0xc0000n, region: null, pages: 32 },
    { start: 0xc0000n, end: 0xc1000n, region: 'rom', pages: 1 },
  ]);
  assert.deepEqual(attributeRanges([{ start: 0x200000n, end: 0x201000n }], regions), [{ start: 0x200000n, end: 0x201000n, region: null, pages: 1 }]);
});

test('runs merge touching ranges; coverage and holes are computed against them', () => {
  const runs = mergeRuns([{ start: 0x100000n, end: 0x200000n }, { start: 0x0n, end: 0xa0000n }, { start: 0xc0000n, end: 0x100000n }]);
  assert.deepEqual(runs, [{ start: 0x0n, end: 0xa0000n }, { start: 0xc0000n, end: 0x200000n }]);
  assert.equal(coveredBytes({ start: 0x90000n, end: 0xd0000n }, runs), 0x20000n);
  assert.deepEqual(firstHole({ start: 0x90000n, end: 0xd0000n }, runs), { start: 0xa0000n, end: 0xc0000n });
  assert.equal(firstHole({ start: 0xc0000n, end: 0x200000n }, runs), undefined);
  assert.deepEqual(firstHole({ start: 0x1ff000n, end: 0x300000n }, runs), { start: 0x200000n, end: 0x300000n });
  assert.equal(regionAt(runs, 0xbffffn), undefined);
  assert.deepEqual(regionAt(runs, 0x1fffffn), { start: 0xc0000n, end: 0x200000n });
});

test('hexdump matches xxd byte for byte (including a short last line and a 64-bit base)', { skip: requireTools('xxd') }, () => {
  const data = Buffer.from(Array.from({ length: 53 }, (_, i) => (i * 37 + 5) & 0xff));
  const xxd = execFileSync('xxd', ['-o', String(0x7c00), '-'], { input: data }).toString();
  assert.equal(hexdump(data, 0x7c00n), xxd);
  assert.match(hexdump(Buffer.from('hi'), 0xffff_ffff_ffff_fff0n), /^fffffffffffffff0: 6869 {37}hi\n$/);
});
