import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CpusSection, ErrorsSection, Manifest } from '../../src/bundle/schema';
import { formatSummaryLine, summaryFromBundle } from '../../src/capture';
import { SAMPLE_BUNDLE } from '../../src/cli/commands/demo';
import { BOOT_SECTOR_ANSWERS } from '../../src/guest';
import { fromHex } from '../../src/util/hex';
import { withBundle } from './harness';

// The committed sample was produced by `vmpm demo -o samples/boot-sector-panic.vmpm`. Reading it on
// every run keeps old bundles readable: a reader change that breaks it fails here.
test('the committed sample bundle still opens, verifies and holds the known answers', async () => {
  await withBundle(SAMPLE_BUNDLE, async (reader) => {
    const verify = await reader.verify();
    assert.deepEqual(verify.problems, []);
    assert.equal(verify.ok, true);
    const manifest = await reader.json<Manifest>('manifest');
    assert.equal(manifest.origin, 'capture');
    assert.equal(manifest.vm.arch, 'x86_64');
    assert.equal(manifest.runState.before.status, 'guest-panicked');
    const cpu = (await reader.json<CpusSection>('cpus')).cpus[0]!;
    for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
      assert.equal(fromHex(cpu.registers[name] ?? 'missing'), value, name);
    }
    for (const p of BOOT_SECTOR_ANSWERS.patterns) {
      const repeat = p.repeat ?? 1;
      assert.ok((await reader.read(p.phys, p.bytes.length * repeat)).equals(Buffer.concat(Array(repeat).fill(p.bytes))));
    }
    const errors = await reader.json<ErrorsSection>('errors');
    assert.ok(errors.records.some((r) => r.kind === 'guest-panicked' && r.source === 'event'));
    // Small: a 64 MiB guest whose pages are nearly all zero.
    assert.ok(reader.fileSize < 512 * 1024, `sample is ${reader.fileSize} bytes`);
    const summary = await summaryFromBundle(reader);
    assert.equal(summary.ramCapturedBytes, 64 * 1024 * 1024);
    assert.ok(summary.zeroPages > 16000);
    assert.match(formatSummaryLine(summary), /^captured vmpm-demo \[x86_64, guest-panicked\]: 1 CPU, 64 MiB RAM in 1 range \(\d+ of 16384 pages zero\)/);
  });
});
