/**
 * Two things a responder trips on, on the real sample bundle: an address copied from `regs` given to
 * `read --phys`, and segment fields wrapping into the next segment's row in `regs`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');

describe('responder hints', () => {
  it('read --phys of a kernel virtual address says so and points to --virt', async () => {
    const r = await runCli(['read', SAMPLE, '--phys', '0xffffffff81000000', '--length', '16']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim(), 'vmpm: 0xffffffff81000000 is not a physical address (above the 52-bit physical address space): it looks like a kernel virtual address, e.g. from regs; read it with --virt 0xffffffff81000000');
  });

  it('read --phys of a physical hole still says it was not captured', async () => {
    const r = await runCli(['read', SAMPLE, '--phys', '0x100000000', '--length', '16']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /was not captured in this bundle .*--zero-fill/);
  });

  it('regs prints one segment per row, its fields in columns', async () => {
    const r = await runCli(['regs', SAMPLE]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const start = lines.indexOf('Segments:');
    const rows = lines.slice(start + 1, start + 9);
    assert.deepEqual(rows.map((l) => l.trim().split('.')[0]), ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr']);
    for (const row of rows) {
      const seg = row.trim().split('.')[0]!;
      assert.deepEqual(row.trim().split(/\s+/).map((c) => c.split('=')[0]), ['selector', 'base', 'limit', 'flags'].map((f) => `${seg}.${f}`), row);
    }
    // The columns line up: every row's base field starts at the same offset.
    assert.equal(new Set(rows.map((l) => l.search(/\S+\.base=/))).size, 1);
  });
});
