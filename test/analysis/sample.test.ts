import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { BOOT_SECTOR_ANSWERS } from '../../src/guest';
import { toHex } from '../../src/util/hex';
import type { InfoModel, RegsModel, MemmapModel, SearchModel, ErrorsModel, EventsModel, DiffModel } from '../../src/analysis';

// The committed real capture of the known-answer boot-sector guest (vmpm demo, QEMU 7.2, TCG).
const SAMPLE = join(__dirname, '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const ARTIFACTS = join(__dirname, '..', '..', '..', 'test-artifacts');

async function json<T>(...args: string[]): Promise<T> {
  const r = await runCli([...args, '--json']);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

test('sample: info shows the panicked guest, integrity ok and the SHA-256 sha256sum would print', async () => {
  const info = await json<InfoModel>('info', SAMPLE);
  assert.equal(info.integrity.status, 'ok');
  assert.equal(info.sha256, createHash('sha256').update(readFileSync(SAMPLE)).digest('hex'));
  assert.equal(info.runState.after?.status, 'guest-panicked');
  assert.equal(info.vm.arch, 'x86_64');
  assert.equal(info.cpus[0].mode, 'real');
  assert.ok((info.errors.byKind['guest-panicked'] ?? 0) >= 1);
  // One panic, seen twice: as the GUEST_PANICKED event and as the run state. info says where each came from.
  assert.deepEqual(info.errors.sourcesByKind['guest-panicked'], ['event', 'run-state']);
  const text = await runCli(['info', SAMPLE, '--no-verify']);
  assert.match(text.stdout, /^Errors +2: guest-panicked 2 \(event, run-state\)$/m);
});

test('sample: regs has the boot sector known-answer registers', async () => {
  const regs = await json<RegsModel>('regs', SAMPLE, '--cpu', '0');
  for (const [name, value] of Object.entries(BOOT_SECTOR_ANSWERS.registers)) {
    assert.equal(regs.cpus[0].registers[name], toHex(value), name);
  }
});

test('sample: memmap marks RAM captured and the BIOS ROM not captured; read finds the known patterns', async () => {
  const map = await json<MemmapModel>('memmap', SAMPLE);
  assert.ok(map.regions.some((g: { name: string; kind: string; captured: boolean }) => g.name === 'pc.ram' && g.kind === 'ram' && g.captured));
  assert.ok(map.regions.some((g: { name: string; captured: boolean }) => g.name === 'pc.bios' && !g.captured));
  for (const p of BOOT_SECTOR_ANSWERS.patterns) {
    const n = p.repeat ?? 1;
    const first = await json<{ hex: string }>('read', SAMPLE, '--phys', toHex(p.phys), '--length', String(p.bytes.length));
    assert.equal(first.hex, p.bytes.toString('hex'));
    const last = await json<{ hex: string }>('read', SAMPLE, '--phys', toHex(p.phys + BigInt((n - 1) * p.bytes.length)), '--length', String(p.bytes.length));
    assert.equal(last.hex, p.bytes.toString('hex'));
  }
});

test('sample: search finds every repeat of the 64 KiB pattern and the marker', async () => {
  const pat = BOOT_SECTOR_ANSWERS.patterns[0]!;
  const found = await json<SearchModel>('search', SAMPLE, '--hex', pat.bytes.toString('hex'), '--limit', '10000');
  const addrs = new Set(found.matches.map((m: { address: string }) => m.address));
  for (let i = 0; i < (pat.repeat ?? 1); i++) assert.ok(addrs.has(toHex(pat.phys + BigInt(i * pat.bytes.length))), `repeat ${i}`);
  const marker = await json<SearchModel>('search', SAMPLE, '--text', 'FORENSIC-MARKER-1');
  assert.ok(marker.matches.some((m: { address: string }) => m.address === '0x30000'));
});

test('sample: errors, events, a diff with itself, and the reports', { timeout: 120_000 }, async () => {
  const errors = await json<ErrorsModel>('errors', SAMPLE);
  assert.ok(errors.records.some((r: { kind: string }) => r.kind === 'guest-panicked'));
  const events = await json<EventsModel>('events', SAMPLE);
  assert.ok(events.events.some((e: { event: string }) => e.event === 'GUEST_PANICKED'));
  const d = await json<DiffModel>('diff', SAMPLE, SAMPLE);
  assert.deepEqual([d.memory.changed, d.cpus, d.identity.changes], [[], [], []]);
  const md = await runCli(['report', SAMPLE]);
  assert.equal(md.code, 0, md.stderr);
  assert.match(md.stdout, /# vmpm report: vmpm-demo, guest-panicked/);
  if (requireTools('chromium') === false) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const html = join(ARTIFACTS, 'sample-report.html');
    assert.equal((await runCli(['report', SAMPLE, '-o', html, '--force'])).code, 0);
    const profile = join(ARTIFACTS, '.chromium-profile');
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--hide-scrollbars'];
    const dom = await promisify(execFile)('chromium', [...flags, '--dump-dom', `file://${html}`], { timeout: 60_000, maxBuffer: 64 << 20 });
    assert.match(dom.stdout, /<g class="region" data-name="pc\.ram" data-kind="ram"/);
    await promisify(execFile)('chromium', [...flags, '--window-size=1200,2400', `--screenshot=${join(ARTIFACTS, 'sample-report.png')}`, `file://${html}`], { timeout: 60_000 });
  }
});
