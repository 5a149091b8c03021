import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildInfo, buildRegs, loadSections, withBundle, type RegisterSource } from '../../src/analysis';
import type { BundleSpec } from '../../bench/lib/build-bundle';
import { formatInfo } from '../../src/cli/commands/info';
import { formatRegs } from '../../src/cli/commands/regs';
import { palette } from '../../src/cli/output/color';
import { runCli } from '../helpers/cli';
import { buildBundle, tempDir } from '../../bench/lib/build-bundle';

/**
 * `vmpm regs` and `vmpm info` say where the registers came from (the cpus section's `source`): the
 * migration stream of a background snapshot (QEMU's own stop) or `info registers` (read by vmpm), and,
 * when the bundle does not record it, what it must have been (an older capture, an imported dump).
 */
const tmp = tempDir();
after(() => tmp.cleanup());

const CASES: Array<{ name: string; spec: BundleSpec; kind: RegisterSource['kind']; recorded: boolean; text: RegExp }> = [
  { name: 'stream', spec: { cpuSource: 'migration-stream' }, kind: 'migration-stream', recorded: true, text: /QEMU's migration stream \(the vCPU state its background snapshot saved in its own stop/ },
  { name: 'hmp', spec: { cpuSource: 'info-registers' }, kind: 'info-registers', recorded: true, text: /QEMU's `info registers`, read by vmpm during the capture$/ },
  { name: 'older', spec: {}, kind: 'info-registers', recorded: false, text: /`info registers` \(inferred: older captures do not record the source/ },
  { name: 'import', spec: { origin: 'import' }, kind: 'dump-notes', recorded: false, text: /the imported dump's ELF notes/ },
];

for (const c of CASES) {
  test(`regs and info name the register source: ${c.name}`, async () => {
    const path = tmp.path(`${c.name}.vmpm`);
    await buildBundle(path, c.spec);
    const [regs, info] = await withBundle(path, async (b) => {
      const s = await loadSections(b);
      return [buildRegs(s.cpus, undefined, s.manifest), await buildInfo(b, { verify: false, sections: s })] as const;
    });
    for (const source of [regs.source, info.registerSource]) {
      assert.equal(source?.kind, c.kind);
      assert.equal(source?.recorded, c.recorded);
      assert.match(source!.text, c.text);
    }
    const text = formatRegs(regs, palette());
    assert.match(text.split('\n')[0]!, /^registers from: /);
    assert.match(text.split('\n')[0]!, c.text);
    assert.match(text, /^vCPU 0 {2}x86_64/m);
    const row = /^Registers +from (.*)$/m.exec(formatInfo(info, palette()));
    assert.ok(row, 'info has a Registers row');
    assert.match(row[1]!, c.text);
  });
}

test('a bundle without registers has no source; --json and the text through the CLI', async () => {
  const none = tmp.path('none.vmpm');
  await buildBundle(none, { omit: ['cpus'] });
  const noRegs = await runCli(['regs', none, '--json']);
  assert.equal(noRegs.code, 0, noRegs.stderr);
  assert.deepEqual(JSON.parse(noRegs.stdout), { source: null, cpus: [] });
  const noInfo = await runCli(['info', none, '--no-verify']);
  assert.doesNotMatch(noInfo.stdout, /^Registers/m);

  const path = tmp.path('cli-stream.vmpm');
  await buildBundle(path, { cpuSource: 'migration-stream' });
  const regs = await runCli(['regs', path, '--json']);
  assert.equal(regs.code, 0, regs.stderr);
  const model = JSON.parse(regs.stdout) as { source: RegisterSource; cpus: unknown[] };
  assert.deepEqual({ kind: model.source.kind, recorded: model.source.recorded }, { kind: 'migration-stream', recorded: true });
  assert.equal(model.cpus.length, 1);
  const info = await runCli(['info', path, '--json', '--no-verify']);
  assert.equal((JSON.parse(info.stdout) as { registerSource: RegisterSource }).registerSource.kind, 'migration-stream');
  const text = await runCli(['regs', path, '--cpu', '0']);
  assert.match(text.stdout, /^registers from: QEMU's migration stream/);
  const infoText = await runCli(['info', path, '--no-verify']);
  assert.match(infoText.stdout, /^Registers +from QEMU's migration stream/m);
});
