import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildInfo, withBundle } from '../../src/analysis';
import { formatInfo } from '../../src/cli/commands/info';
import { palette } from '../../src/cli/output/color';
import { runCli } from '../helpers/cli';
import { buildBundle, tempDir } from '../../bench/lib/build-bundle';
import type { ManifestTransport } from '../../src/bundle/schema';

/**
 * `vmpm info` says how the bundle's QEMU was reached (the manifest's `transport`): a QMP socket, a QMP
 * socket to a QEMU that libvirt runs, or a libvirt domain; bundles that do not record it show no row.
 */
const tmp = tempDir();
after(() => tmp.cleanup());

const CASES: Array<{ name: string; transport?: ManifestTransport; row: RegExp | null }> = [
  { name: 'qmp', transport: { kind: 'qmp', endpoint: 'unix:/run/vm1.qmp' }, row: /^Transport +QMP socket unix:\/run\/vm1\.qmp$/m },
  {
    name: 'qmp-libvirt-owned',
    transport: { kind: 'qmp', endpoint: 'unix:/var/lib/libvirt/qemu/domain-1-web1/monitor.sock', libvirtOwned: 'its command line has -name guest=web1' },
    row: /^Transport +QMP socket unix:\/var\/lib\/libvirt\/qemu\/domain-1-web1\/monitor\.sock \(QEMU run by libvirt: its command line has -name guest=web1\)$/m,
  },
  {
    name: 'libvirt',
    transport: {
      kind: 'libvirt',
      endpoint: 'libvirt:web1@qemu:///system',
      libvirt: { domain: 'web1', uuid: '11111111-2222-3333-4444-555555555555', uri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0' },
    },
    row: /^Transport +libvirt domain web1 \(qemu:\/\/\/system, libvirt 9\.0\.0\)$/m,
  },
  { name: 'unrecorded', row: null },
];

for (const c of CASES) {
  test(`info shows the transport: ${c.name}`, async () => {
    const path = tmp.path(`${c.name}.vmpm`);
    await buildBundle(path, c.transport ? { transport: c.transport } : {});
    const model = await withBundle(path, (b) => buildInfo(b, { verify: false }));
    assert.deepEqual(model.capture.transport, c.transport ?? null);
    const text = formatInfo(model, palette());
    if (c.row) assert.match(text, c.row);
    else assert.doesNotMatch(text, /^Transport/m);
  });
}

test('info --json and the text row through the CLI', async () => {
  const path = tmp.path('qmp.vmpm');
  const json = await runCli(['info', path, '--json', '--no-verify']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { capture: { transport: unknown } }).capture.transport, { kind: 'qmp', endpoint: 'unix:/run/vm1.qmp' });
  const text = await runCli(['info', path, '--no-verify']);
  assert.match(text.stdout, /^Transport +QMP socket unix:\/run\/vm1\.qmp$/m);
});
