import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli';

test('vmpm --version prints the package version and exits 0', async () => {
  const pkg = require('../../../package.json') as { version: string };
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('vmpm with an unknown command exits 2 with a one-line error and no stack trace', async () => {
  const r = await runCli(['no-such-command']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown command/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('commander usage errors read like every other vmpm error: one "vmpm: ..." line, exit 2', async () => {
  const missing = await runCli(['capture', '--qmp', '/nowhere.sock']);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr, "vmpm: required option '-o, --output <file>' not specified\n");
  const unknown = await runCli(['info', '--no-such-flag', 'x.vmpm']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^vmpm: unknown option '--no-such-flag'\n$/);
});
