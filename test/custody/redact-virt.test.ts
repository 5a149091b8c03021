import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TranslateModel } from '../../src/analysis';
import { BundleReader, type RedactionSection } from '../../src/bundle';
import { runCli } from '../helpers/cli';
import { requireTools } from '../helpers/requirements';
import { guestBuildSkipReason } from '../linux/build-guest';
import { scenario } from '../linux/scenario';

/**
 * `redact --virt` on a real Linux guest (the shared sysrq scenario): the first pages of PID 1's
 * busybox image, a user-space range of the process that panicked the guest, are erased exactly —
 * the pages its page tables map, no other page.
 */
const skip = requireTools('qemu-system-x86_64', 'dpkg-deb', 'xz') || guestBuildSkipReason();
const hex = (v: bigint): string => `0x${v.toString(16)}`;

async function json<T>(args: string[]): Promise<T> {
  const r = await runCli([...args, '--json'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `vmpm ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

test('--virt erases exactly the physical pages that back a user process range', { skip, timeout: 240_000 }, async () => {
  const s = await scenario({ trigger: 'sysrq' });
  const busybox = readFileSync(join(s.guest.dir, 'busybox'));
  const phoff = Number(busybox.readBigUInt64LE(0x20));
  let base: bigint | undefined;
  for (let i = 0; i < busybox.readUInt16LE(0x38) && base === undefined; i++) {
    const ph = phoff + i * busybox.readUInt16LE(0x36);
    if (busybox.readUInt32LE(ph) === 1 && busybox.readBigUInt64LE(ph + 8) === 0n) base = busybox.readBigUInt64LE(ph + 16);
  }
  assert.ok(base !== undefined, 'busybox has a PT_LOAD at offset 0');
  // The vCPU that ran /init (it wrote to /proc/sysrq-trigger) maps busybox at its link address.
  const PAGES = 4n;
  let cpu: number | undefined;
  let maps: TranslateModel[] = [];
  for (const c of [0, 1]) {
    maps = [];
    for (let p = 0n; p < PAGES; p++) maps.push(await json<TranslateModel>(['translate', s.bundle, hex(base + p * 4096n), '--cpu', String(c)]));
    if (maps[0]!.mapped && maps[0]!.permissions?.user) {
      cpu = c;
      break;
    }
  }
  assert.ok(cpu !== undefined, 'a vCPU maps busybox in user space');
  const expected = maps.filter((m) => m.mapped).map((m) => BigInt(m.physical!) & ~0xfffn);
  assert.ok(expected.length >= 1);

  const out = join(s.dir, 'virt-redacted.vmpm');
  const r = await runCli(['redact', s.bundle, '-o', out, '--virt', `${hex(base)}-${hex(base + PAGES * 4096n)}`, '--cpu', String(cpu), '--reason', 'init image'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);

  const a = await BundleReader.open(s.bundle);
  const b = await BundleReader.open(out);
  try {
    const rec = (await b.json<RedactionSection>('redaction')).records[0]!;
    assert.match(rec.requests[0]!, new RegExp(`^virt ${hex(base)}-${hex(base + PAGES * 4096n)} \\(vCPU ${cpu} cr3 0x[0-9a-f]+\\): ${expected.length} mapped page\\(s\\) captured`));
    assert.deepEqual(rec.pages.map((p) => BigInt(p.addr)).sort(), [...expected].sort());
    // exactly those pages read as zeros now and differ; every other page keeps its digest
    const changed = new Set(expected);
    for (const p of a.pages()) {
      const d = b.pageDigest(p.addr)!.toString('hex');
      if (changed.has(p.addr)) {
        assert.notEqual(d, p.digest.toString('hex'));
        assert.deepEqual(await b.read(p.addr, 4096), Buffer.alloc(4096));
        assert.equal(rec.pages.find((x) => BigInt(x.addr) === p.addr)!.originalSha256, p.digest.toString('hex'));
      } else assert.equal(d, p.digest.toString('hex'), `page ${hex(p.addr)} untouched`);
    }
  } finally {
    await a.close();
    await b.close();
  }
  // Through the page tables the range now reads as zeros too.
  const v = await json<{ hex: string }>(['read', out, '--virt', hex(base), '--length', '64', '--cpu', String(cpu)]);
  assert.equal(v.hex, '00'.repeat(64));
});
