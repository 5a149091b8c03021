import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { withBundle } from './harness';

const skip = requireTools('qemu-system-x86_64');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vmpm-demo-test-'));
}

test('vmpm demo boots the built-in guest, lets it panic and writes ./demo.vmpm with a one-line summary', { skip }, async () => {
  const cwd = tempDir();
  try {
    const r = await runCli(['demo'], { cwd, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^captured vmpm-demo \[x86_64, guest-panicked\]: 1 CPU, 64 MiB RAM/);
    assert.match(r.stderr, /guest panicked after \d+ ms/);
    await withBundle(join(cwd, 'demo.vmpm'), async (reader) => assert.equal((await reader.verify()).ok, true));

    // A second run refuses to overwrite, and says how to.
    const again = await runCli(['demo'], { cwd, timeoutMs: 60_000 });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /demo\.vmpm already exists \(use --force/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('vmpm demo does not touch an existing file it refuses to overwrite', { skip }, async () => {
  const cwd = tempDir();
  try {
    writeFileSync(join(cwd, 'mine.vmpm'), 'precious');
    const r = await runCli(['demo', '-o', 'mine.vmpm'], { cwd });
    assert.equal(r.code, 1);
    assert.equal(readFileSync(join(cwd, 'mine.vmpm'), 'utf8'), 'precious');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('vmpm demo without QEMU says so and prints the summary of the committed sample', async () => {
  const cwd = tempDir();
  try {
    const r = await runCli(['demo'], { cwd, env: { PATH: '/nonexistent' } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /qemu-system-x86_64 is not installed/);
    assert.match(r.stdout, /^captured vmpm-demo \[x86_64, guest-panicked\]: 1 CPU, 64 MiB RAM in 1 range .*boot-sector-panic\.vmpm/);
    assert.equal(existsSync(join(cwd, 'demo.vmpm')), false);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
