import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, PC_RANGES, PC_REGIONS } from '../../bench/lib/build-bundle';
import { fuzz, loadSeed } from '../../bench/lib/fuzz-engine';

/** The bounded fuzz run in `npm test`: fixed seed, 2,000 cases; bench/fuzz.ts runs long ones. */
const dir = mkdtempSync(join(tmpdir(), 'vmpm-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('2,000 mutated bundles (bytes and forged sections): no crash, no hang, no undetected byte change', async () => {
  const sample = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
  const synthetic = join(dir, 'synthetic.vmpm');
  await buildBundle(synthetic, { regions: PC_REGIONS, ranges: PC_RANGES.slice(0, 2) });
  const seeds = [
    { ...(await loadSeed('sample', sample)), path: sample },
    { ...(await loadSeed('synthetic', synthetic)), path: synthetic },
  ];
  const stats = await fuzz({ seeds, cases: Number(process.env.VMPM_FUZZ_CASES ?? 2000), seed: 13, dir });
  assert.deepEqual(stats.crashes.slice(0, 5), [], `${stats.crashes.length} crashes`);
  assert.equal(stats.hangs, 0);
  assert.equal(stats.undetected, 0);
  assert.ok(stats.refused > 0, 'the mutants must reach the refusal paths');
});
