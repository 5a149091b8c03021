import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { MemmapSection } from '../../src/bundle/schema';
import { capture } from '../../src/capture';
import { BOOT_SECTOR_ANSWERS, launchBootSectorGuest } from '../../src/guest';
import { requireTools } from '../helpers/requirements';
import { runUntil, withBundle, withGuest } from './harness';

const skip = requireTools('qemu-system-x86_64');
const GiB = 1n << 30n;

test('-m 4G pc: RAM captured at 0..0xbfffffff and 0x100000000..0x13fffffff, nothing from the hole, zero pages not stored, bounded memory and time', { skip, timeout: 120_000 }, async () => {
  await withGuest(() => launchBootSectorGuest({ startPaused: true, memory: '4G' }), async ({ client, dir }) => {
    await runUntil(client, 'GUEST_PANICKED');
    const output = join(dir, 'big.vmpm');
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25);
    const t0 = Date.now();
    let result;
    try {
      result = await capture(client, { output, quiesce: 'stop-and-restore', memory: 'dump' });
    } finally {
      clearInterval(sampler);
    }
    const seconds = (Date.now() - t0) / 1000;
    assert.ok(seconds < 60, `capture of 4 GiB took ${seconds} s`);
    assert.ok(peakRss - rssBefore < 256 * 1024 * 1024, `RSS grew by ${(peakRss - rssBefore) / 2 ** 20} MiB`);
    // Zero pages are indexed, not stored: what remains of a nearly all-zero 4 GiB guest is the page
    // index (4 bytes per page, 4 MiB here) plus a few compressed frames.
    assert.ok(result.size < 6 * 1024 * 1024, `bundle is ${result.size} bytes`);
    assert.equal(result.summary.ramCapturedBytes, 4 * 2 ** 30);
    assert.ok(result.summary.storedPages < 1000, `stored ${result.summary.storedPages} pages`);

    await withBundle(output, async (reader) => {
      const ranges = reader.ranges();
      const covered = (a: bigint): boolean => ranges.some((r) => r.start <= a && a < r.start + r.length);
      assert.equal(ranges[0]!.start, 0n);
      assert.equal(ranges.reduce((s, r) => s + r.length, 0n), 4n * GiB);
      for (const a of [0n, 0x7c00n, 0xfffffn, 0x100000n, 0xbffff000n, 0x100000000n, 0x13ffff000n]) assert.ok(covered(a), `0x${a.toString(16)} captured`);
      // The PCI hole (incl. pc.bios at 0xfffc0000) is not RAM.
      for (const a of [0xc0000000n, 0xfec00000n, 0xfffc0000n, 0xfffff000n, 0x140000000n]) assert.ok(!covered(a), `0x${a.toString(16)} not captured`);
      const high = ranges.find((r) => r.start === 0x100000000n);
      assert.equal(high?.length, GiB);
      assert.equal(high?.name, 'pc.ram');
      const p = BOOT_SECTOR_ANSWERS.patterns[0]!;
      assert.ok((await reader.read(p.phys, p.bytes.length)).equals(p.bytes));
      const memmap = await reader.json<MemmapSection>('memmap');
      assert.equal(memmap.sizeSummary?.baseMemory, '0x100000000');
      assert.equal(memmap.regions.find((r) => r.name === 'pc.bios' && r.start === '0xfffc0000')?.captured, false);
    });
  });
});
