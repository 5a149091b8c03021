import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, VMPM_BIN } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { launchBootSectorGuest } from '../../src/guest';

const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-cli-bad-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One line on stderr, starting "vmpm: ", with no stack trace. */
function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got: ${stderr}`);
  assert.match(lines[0]!, /^vmpm: /);
  assert.match(lines[0]!, pattern);
}

test('read and report -o into a missing directory fail in one line naming the directory, leaving nothing', async () => {
  const missing = join(dir, 'no-such-dir');
  const read = await runCli(['read', SAMPLE, '--phys', '0x20000', '--length', '16', '--raw', '-o', join(missing, 'x.bin')]);
  assert.equal(read.code, 1);
  assertOneLineError(read.stderr, /-o .*x\.bin: directory .*no-such-dir does not exist/);
  const report = await runCli(['report', SAMPLE, '-o', join(missing, 'r.md')]);
  assert.equal(report.code, 1);
  assertOneLineError(report.stderr, /-o .*r\.md: directory .*no-such-dir does not exist/);
  assert.equal(existsSync(missing), false);
});

test('-o under a path whose parent is a regular file is refused in one line', async () => {
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  const r = await runCli(['read', SAMPLE, '--phys', '0x20000', '-o', join(file, 'out.txt')]);
  assert.equal(r.code, 1);
  assertOneLineError(r.stderr, /plain-file is not a directory/);
});

test('demo -o into a missing directory or onto a directory fails before booting any guest', async () => {
  const missing = await runCli(['demo', '-o', join(dir, 'nope', 'demo.vmpm')]);
  assert.equal(missing.code, 1);
  assertOneLineError(missing.stderr, /directory .*nope does not exist/);
  const subdir = join(dir, 'a-directory');
  mkdirSync(subdir);
  const onDir = await runCli(['demo', '-o', subdir, '--force']);
  assert.equal(onDir.code, 2);
  assertOneLineError(onDir.stderr, /a-directory: is a directory; give a file name/);
});

test('capture -o into a missing directory fails before connecting to the monitor', async () => {
  const r = await runCli(['capture', '--qmp', join(dir, 'dead.sock'), '-o', join(dir, 'nope', 'c.vmpm')]);
  assert.equal(r.code, 1);
  assertOneLineError(r.stderr, /directory .*nope does not exist/);
});

test('numeric options are checked up front with exit 2: state --timeout, watch --exec-timeout, search --limit 0', async () => {
  const state = await runCli(['state', '--qmp', join(dir, 'dead.sock'), '--timeout', 'xyz']);
  assert.equal(state.code, 2);
  assertOneLineError(state.stderr, /--timeout expects a positive whole number of milliseconds, got "xyz"/);
  const watch = await runCli(['watch', '--qmp', join(dir, 'dead.sock'), '--out-dir', dir, '--exec-timeout', 'abc'], { timeoutMs: 10_000 });
  assert.equal(watch.code, 2);
  assertOneLineError(watch.stderr, /--exec-timeout expects a positive whole number of milliseconds, got "abc"/);
  const limit = await runCli(['search', SAMPLE, '--text', 'FORENSIC', '--limit', '0']);
  assert.equal(limit.code, 2);
  assertOneLineError(limit.stderr, /--limit expects a positive integer, got "0"/);
});

for (const [sig, code128] of [['SIGTERM', 143], ['SIGHUP', 129]] as const) {
test(`read --raw -o interrupted by ${sig} removes the partial output and exits ${code128} with one line`, async () => {
  const out = join(dir, `huge-${sig}.bin`);
  const child = spawn(process.execPath, [VMPM_BIN, 'read', SAMPLE, '--phys', '0', '--length', '64G', '--zero-fill', '--raw', '-o', out], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    // Wait until bytes are being written, then interrupt.
    const deadline = Date.now() + 20_000;
    while (!(existsSync(out) && statSync(out).size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(existsSync(out), 'the output file was never created');
    child.kill(sig);
    const code = await exited;
    assert.equal(code, code128);
    assertOneLineError(stderr, new RegExp(`read interrupted by ${sig}; the partial -o .*huge-${sig}\\.bin was removed`));
    assert.equal(existsSync(out), false);
  } finally {
    child.kill('SIGKILL');
  }
});
}

test('state --out-dir that is missing or a file is one clear line, exit 1, for a stopped VM', { skip: requireTools('qemu-system-x86_64') }, async () => {
  const qemu = await launchBootSectorGuest({ startPaused: true });
  try {
    const missing = await runCli(['state', '--qmp', qemu.endpoint, '--out-dir', join(dir, 'no-such-out-dir')]);
    assert.equal(missing.code, 1, missing.stdout);
    assertOneLineError(missing.stderr, /--out-dir .*no-such-out-dir: cannot list bundles: ENOENT/);
    const file = join(dir, 'out-dir-is-a-file');
    writeFileSync(file, '');
    const notDir = await runCli(['state', '--qmp', qemu.endpoint, '--out-dir', file, '--json']);
    assert.equal(notDir.code, 1);
    assert.equal(notDir.stdout, '');
    assertOneLineError(notDir.stderr, /--out-dir .*out-dir-is-a-file: cannot list bundles: ENOTDIR/);
  } finally {
    await qemu.kill();
  }
});

test('--no-memory with an explicit --memory-method is a contradiction (exit 2) in capture and watch, checked before connecting', async () => {
  const capture = await runCli(['capture', '--qmp', join(dir, 'dead.sock'), '-o', join(dir, 'never.vmpm'), '--no-memory', '--memory-method', 'pmemsave']);
  assert.equal(capture.code, 2);
  assertOneLineError(capture.stderr, /--no-memory and --memory-method contradict each other/);
  const watch = await runCli(['watch', '--qmp', join(dir, 'dead.sock'), '--out-dir', dir, '--no-memory', '--memory-method', 'dump'], { timeoutMs: 10_000 });
  assert.equal(watch.code, 2);
  assertOneLineError(watch.stderr, /--no-memory and --memory-method contradict each other/);
  // --no-memory alone still goes on to connect (and fails there, on the dead socket).
  const alone = await runCli(['capture', '--qmp', join(dir, 'dead.sock'), '-o', join(dir, 'never.vmpm'), '--no-memory']);
  assert.equal(alone.code, 1);
  assertOneLineError(alone.stderr, /no QMP socket at/);
});
