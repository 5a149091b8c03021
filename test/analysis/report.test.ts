import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { buildBundle, journalEvent, panicRecord, tempDir, x86Cpu } from '../../bench/lib/build-bundle';

const run = promisify(execFile);
const tmp = tempDir();
const A = tmp.path('before.vmpm');
const B = tmp.path('after.vmpm');
const ARTIFACTS = join(__dirname, '..', '..', '..', 'test-artifacts');

before(async () => {
  const pattern = Buffer.from('QMPLAB-PATTERN!\n'.repeat(4096));
  await buildBundle(A, { status: 'running', reason: 'none', patches: [{ addr: 0x20000n, bytes: pattern }], events: [journalEvent('RESUME', 1767322800)] });
  await buildBundle(B, {
    cpus: [x86Cpu(0), x86Cpu(1, { rip: 0xfff0n }, 'protected')],
    patches: [
      { addr: 0x20000n, bytes: pattern },
      { addr: 0x30000n, bytes: Buffer.from('FORENSIC-MARKER-1\0') },
      { addr: 0x800000n, bytes: Buffer.alloc(0x40000, 0x5a) },
      { addr: 0xfffffff0n, bytes: Buffer.from([0xea, 0x5b, 0xe0]) },
    ],
    errors: [panicRecord('2026-01-02T03:04:04.500Z'), { time: '2026-01-02T03:04:03.000Z', source: 'event', kind: 'block-io-error', severity: 'error', summary: 'BLOCK_IO_ERROR on ide1-hd0: read Input/output error | pipe', device: 'ide1-hd0', raw: {} }],
    events: [journalEvent('RESUME', 1767322800), journalEvent('GUEST_PANICKED', 1767323044, { action: 'pause' })],
  });
});
after(() => tmp.cleanup());

/** Loads a local HTML file in headless Chromium with networking off; returns the rendered DOM and writes a screenshot. */
async function renderInChromium(htmlPath: string, screenshot: string): Promise<string> {
  const profile = tmp.path(`chromium-${Date.now()}`);
  const common = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--hide-scrollbars',
  ];
  const url = `file://${htmlPath}`;
  const dom = await run('chromium', [...common, '--dump-dom', url], { timeout: 60_000, maxBuffer: 64 << 20 });
  await run('chromium', [...common, '--window-size=1200,2600', `--screenshot=${screenshot}`, url], { timeout: 60_000 });
  return dom.stdout;
}

test('Markdown report: summary, error timeline, CPU state, memory map, provenance and the SHA-256 of the bundle', async () => {
  const r = await runCli(['report', B]);
  assert.equal(r.code, 0, r.stderr);
  const md = r.stdout;
  const sha = JSON.parse((await runCli(['info', B, '--json'])).stdout).sha256 as string;
  for (const h of ['# vmpm report: testvm, guest-panicked (GUEST_PANICKED)', '## Summary', '## Error timeline', '## CPU state at stop', '## Memory map', '## Provenance']) assert.ok(md.includes(h), h);
  assert.ok(md.includes(`\`${sha}\``), 'bundle SHA-256 in the report');
  assert.match(md, /Instruction pointer: `rip = 0x7c66`/);
  assert.match(md, /\| rbx \| `0xbadc0de5` \|/);
  assert.match(md, /\| 2026-01-02T03:04:03.000Z \| error \| block-io-error \| BLOCK_IO_ERROR on ide1-hd0: read Input\/output error \\\| pipe \|/, 'pipes escaped inside tables, intraword underscores kept');
  assert.match(md, /\| vga-lowmem \| io \| `0xa0000` \| `0xc0000` \| 128 KiB \| no \|/);
  assert.match(md, /QEMU: 7\.2\.22/);
});

test('JSON report carries the same content machine-readably', async () => {
  const r = await runCli(['report', B, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.kind, 'bundle');
  assert.equal(j.info.vm.name, 'testvm');
  assert.equal(j.errors.records.length, 2);
  assert.equal(j.cpus[0].registers.rbx, '0xbadc0de5');
  assert.equal(j.addressSpace.scale, 'segmented');
});

test('report -o picks the format from the extension, refuses to overwrite without --force', async () => {
  const out = tmp.path('r.html');
  assert.equal((await runCli(['report', B, '-o', out])).code, 0);
  assert.match(readFileSync(out, 'utf8'), /^<!DOCTYPE html>/);
  const again = await runCli(['report', B, '-o', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists.*--force/);
  assert.equal((await runCli(['report', B, '-o', out, '--force', '--format', 'md'])).code, 0);
  assert.match(readFileSync(out, 'utf8'), /^# vmpm report/);
  assert.equal((await runCli(['report', B, '--format', 'pdf'])).code, 2);
});

test('HTML report is self-contained: no scripts, no external references, a CSP that forbids fetching', async () => {
  const html = (await runCli(['report', B, '--format', 'html'])).stdout;
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\b(src|href)\s*=/i);
  assert.doesNotMatch(html, /url\((?!#)/);
  assert.doesNotMatch(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, ''), /https?:\/\//);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
});

test('HTML report renders in headless Chromium with the address space drawn per region', { skip: requireTools('chromium'), timeout: 120_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, 'report.html');
  assert.equal((await runCli(['report', B, '-o', file, '--force'])).code, 0);
  const dom = await renderInChromium(file, join(ARTIFACTS, 'report.png'));
  assert.match(dom, /<h1>vmpm report: testvm, guest-panicked \(GUEST_PANICKED\)<\/h1>/);
  const regions = [...dom.matchAll(/<g class="region" data-name="([^"]+)" data-kind="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(regions, ['pc.ram', 'vga-lowmem', 'pc.rom', 'pc.ram@high', 'pc.bios']);
  // bins with data: the pattern at 0x20000 and 0x30000 (pc.ram), 0x800000 (pc.ram@high), the reset vector (pc.bios)
  const dataIn = (name: string): number => {
    const g = new RegExp(`<g class="region" data-name="${name.replace('.', '\\.')}"[\\s\\S]*?</g>`).exec(dom)![0];
    return [...g.matchAll(/data-data="(\d+)"/g)].reduce((s, m) => s + Number(m[1]), 0);
  };
  assert.equal(dataIn('pc.ram'), 16 + 1);
  assert.equal(dataIn('pc.ram@high'), 64);
  assert.equal(dataIn('pc.bios'), 1);
  assert.equal(dataIn('vga-lowmem'), 0);
  assert.match(dom, /<figure id="address-space">/);
  assert.ok(statSync(join(ARTIFACTS, 'report.png')).size > 10_000, 'screenshot written');
});

test('diff report (--against): Markdown lists the changed ranges; HTML draws a heat strip exactly where pages changed', { skip: requireTools('chromium'), timeout: 120_000 }, async () => {
  const md = await runCli(['report', B, '--against', A]);
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /# vmpm diff report: before\.vmpm -> after\.vmpm/);
  assert.match(md.stdout, /\| changed \| `0x800000` \| `0x840000` \| 64 \| pc\.ram@high \|/);
  assert.match(md.stdout, /\| rip \| `-` \| `0xfff0` \|/);
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, 'diff-report.html');
  assert.equal((await runCli(['report', B, '--against', A, '--format', 'html', '-o', file, '--force'])).code, 0);
  const dom = await renderInChromium(file, join(ARTIFACTS, 'diff-report.png'));
  const heat = [...dom.matchAll(/<rect class="heat"[^>]*data-changed="(\d+)"/g)].map((m) => Number(m[1]));
  assert.ok(heat.length > 50, 'one heat cell per bin');
  // 1 page at 0x30000 + 64 pages at 0x800000 + 1 page at the reset vector changed
  assert.equal(heat.reduce((s, n) => s + n, 0), 66);
  assert.match(dom, /<figure id="heat-strip">/);
});
