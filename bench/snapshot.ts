/**
 * Snapshot-capture benchmark (run manually: `npx tsc -p . && node dist/bench/snapshot.js [RUNS]`).
 * `vmpm capture --memory-method snapshot` of guests that are RUNNING while it captures:
 *   - the counting guest (assets/guests/counter.asm: its vCPU never stops storing) at 1 and 4 GiB;
 *   - the bench's fill guest at 4 GiB with its first GiB filled with the mixed page set (halted after
 *     filling but "running" for QEMU), the RSS worst case: a GiB of pages to compress.
 * Each capture runs in a fresh process (bench/capture-child.js) under /usr/bin/time -v when present,
 * so its peak RSS is its own: the pause (QEMU's STOP to RESUME, manifest timings.paused), QEMU's
 * reported downtime and setup time, wall time and peak RSS, with the load average before and after
 * each capture (the machine is shared: every figure is "at that load"). The captures of one guest go
 * to the same QEMU one after another, numbered: QEMU 7.2's first snapshot pauses for milliseconds,
 * later ones longer, inside QEMU's own downtime (README, Performance).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchCounterGuest, launchFillGuest, type LaunchedQemu } from '../src/guest';
import { QmpClient } from '../src/qmp';
import { runCaptureChild } from './lib/capture-child';

const load = (): string => loadavg()[0]!.toFixed(1);

async function scenario(name: string, launch: () => Promise<LaunchedQemu>, ready: (c: QmpClient) => Promise<void>, runs: number): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-bench-snap-'));
  const qemu = await launch();
  const rows: string[] = [];
  try {
    const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'], connectTimeoutMs: 10_000 });
    await ready(client);
    await client.close(); // one client per monitor: the child connects on its own
    for (let i = 0; i < runs; i++) {
      const before = load();
      const out = join(dir, 'snap.vmpm');
      const { wallS, timeRssMiB, result: r } = await runCaptureChild(qemu.endpoint, out, 'snapshot', { timeV: true });
      if (r.memoryMethod !== 'snapshot') throw new Error(`the capture used ${r.memoryMethod}`);
      const fmt = (v: number | null): string => (v === null ? '?' : String(Math.round(v * 10) / 10));
      rows.push(
        `| ${name} | ${i + 1} | ${wallS.toFixed(1)} | ${fmt(r.pausedMs)} | ${fmt(r.qemuDowntimeMs)} | ${fmt(r.qemuSetupMs)} | ${timeRssMiB ?? '?'} (${r.maxRssMiB}) | ${(r.size / 2 ** 20).toFixed(1)} MiB | ${before} -> ${load()} |`,
      );
      process.stderr.write(`${rows.at(-1)}\n`);
      rmSync(out, { force: true });
    }
  } finally {
    await qemu.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const counting = async (c: QmpClient): Promise<void> => {
    while (!(await c.hmp('info registers')).includes('EBX=c0de0c0d')) await new Promise((r) => setTimeout(r, 50));
  };
  const filled = async (c: QmpClient): Promise<void> => {
    await c.execute('cont');
    await c.waitForEvent('GUEST_PANICKED', { timeoutMs: 600_000 });
  };
  process.stderr.write(`uptime: ${execFileSync('uptime').toString().trim()}\n`);
  const rows = [
    ...(await scenario('counting guest, 1 GiB', () => launchCounterGuest({ memory: '1G' }), counting, runs)),
    ...(await scenario('counting guest, 4 GiB', () => launchCounterGuest({ memory: '4G' }), counting, runs)),
    ...(await scenario('4 GiB, 1 GiB mixed', () => launchFillGuest(0x40000000 - 0x200000, { memory: '4G' }), filled, runs)),
  ];
  process.stderr.write(`uptime: ${execFileSync('uptime').toString().trim()}\n`);
  process.stdout.write(
    `| guest | capture # on this QEMU | wall s | paused ms | QEMU downtime ms | QEMU setup ms | peak RSS MiB (time -v; node maxRSS) | bundle | load 1-min before -> after |\n|---|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
