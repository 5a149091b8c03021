import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader } from '../../src/bundle';
import { MAX_JSON_DEPTH, MAX_JSON_VALUES } from '../../src/bundle/validate';
import { forgeJson, forgeSections } from '../../bench/lib/forge';
import { runCli } from '../helpers/cli';

/**
 * Issue 13, items 1 and 2: sections with wrong shapes and every digest recomputed pass `verify`, so
 * the readers must check them; sections built to blow up JSON.parse are refused before parsing.
 * Each case is the smallest reproduction from the trial.
 */
const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const dir = mkdtempSync(join(tmpdir(), 'vmpm-forged-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const original = readFileSync(SAMPLE);

async function sectionJson(name: string): Promise<Record<string, unknown>> {
  const r = await BundleReader.open(SAMPLE);
  try {
    return await r.json<Record<string, unknown>>(name);
  } finally {
    await r.close();
  }
}

function write(name: string, bytes: Buffer): string {
  const p = join(dir, `${name}.vmpm`);
  writeFileSync(p, bytes);
  return p;
}

function assertOneLine(r: { code: number; stderr: string }, pattern: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}: exit ${r.code}, stderr ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: expected one line, got ${r.stderr}`);
  assert.match(lines[0]!, /^vmpm: /, what);
  assert.match(lines[0]!, pattern, what);
}

test('forged sections pass verify but every analyst command names the section and field in one line', async () => {
  const manifest = await sectionJson('manifest');
  const cases: Array<{ name: string; forged: Record<string, unknown>; expect: RegExp; commands: string[][] }> = [
    { name: 'cpus-string', forged: { cpus: { cpus: 'x' } }, expect: /bundle section "cpus": field cpus must be an array/, commands: [['regs'], ['info'], ['report']] },
    { name: 'errors-object', forged: { errors: { records: {} } }, expect: /bundle section "errors": field records must be an array/, commands: [['errors'], ['info']] },
    { name: 'vm-null', forged: { manifest: { ...manifest, vm: null } }, expect: /bundle section "manifest": field vm must be an object/, commands: [['info'], ['report', '--format', 'json']] },
    { name: 'runstate-null', forged: { manifest: { ...manifest, runState: null } }, expect: /bundle section "manifest": field runState must be an object/, commands: [['info']] },
    { name: 'events-number', forged: { events: { events: 5 } }, expect: /bundle section "events": field events must be an array/, commands: [['events']] },
    {
      name: 'rip-null',
      forged: { cpus: { arch: 'x86_64', cpus: [{ index: 0, arch: 'x86_64', mode: 'real', registers: { rip: null }, raw: '' }] } },
      expect: /bundle section "cpus": field cpus\[0\]\.registers\.rip must be a "0x\.\.\." hex string/,
      commands: [['regs']],
    },
    { name: 'memmap-regions', forged: { memmap: { regions: [{ name: 'r', kind: 'ram', start: 5, end: '0x1000', captured: true }], sizeSummary: null, memdevs: [], memoryDevices: [], raw: '' } }, expect: /field regions\[0\]\.start must be a "0x\.\.\." hex string/, commands: [['memmap'], ['search', '--text', 'FORENSIC']] },
  ];
  for (const c of cases) {
    const path = write(c.name, forgeJson(original, c.forged));
    const verify = await runCli(['verify', path]);
    assert.equal(verify.code, 0, `${c.name}: the forgery must look authentic to verify (${verify.stderr})`);
    for (const args of c.commands) {
      const r = await runCli([args[0]!, path, ...args.slice(1)]);
      assertOneLine(r, c.expect, `${c.name} / ${args.join(' ')}`);
    }
  }
  // diff reads both bundles' sections.
  const diff = await runCli(['diff', SAMPLE, join(dir, 'cpus-string.vmpm')]);
  assertOneLine(diff, /bundle section "cpus": field cpus must be an array/, 'diff');
});

test('section still shows a forged JSON section as it is, for the analyst to look at', async () => {
  const r = await runCli(['section', join(dir, 'cpus-string.vmpm'), 'cpus']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { cpus: 'x' });
});

test('JSON sections over the size, value-count or depth limits are refused before parsing, in one line', async () => {
  const big = write('big', forgeSections(original, { cpus: Buffer.alloc(65 * 1024 * 1024, 0x20) }));
  assertOneLine(await runCli(['regs', big]), /bundle section "cpus" is 68157440 bytes, over the 67108864-byte \(64 MiB\) limit/, 'size');
  // Two million and one empty objects: 6 MiB of text, about 200 MiB of heap if it were parsed.
  const many = write('many', forgeSections(original, { events: `{"events":[${'{},'.repeat(MAX_JSON_VALUES)}{}],"dropped":0}` }));
  assertOneLine(await runCli(['events', many]), /bundle section "events" holds more than 2000000 JSON values/, 'values');
  const deep = write('deep', forgeSections(original, { errors: `{"records":${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}}` }));
  assertOneLine(await runCli(['errors', deep]), /bundle section "errors" nests deeper than 64 levels/, 'depth');
});
