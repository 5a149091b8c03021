/**
 * Capture benchmark (run manually: `npx tsc -p . && node dist/bench/capture.js`; about 4 minutes).
 * For a guest whose RAM is filled by the guest itself (assets/guests/fill.asm: a realistic mix over
 * 1 GiB, a mostly-zero variant that fills only 64 MiB, and a 4 GiB guest with its first GiB mixed),
 * side by side in one run:
 *   - vmpm capture, method dump, pmemsave and snapshot (and dump with VMPM_CODEC=portable where the
 *     native zstd is installed, to show what it gives): wall time of the whole process (node start,
 *     connect, capture, exit), bundle size, peak RSS, and how long the guest was paused;
 *   - QEMU dump-guest-memory (ELF) to a file, then `zstd -3 -T2` on it: each time, and the .zst size;
 *   - the CPU QEMU itself spends on each capture and on the baseline's dump (its share of the 2 cores);
 *   - metadata-only capture (--no-memory): in-process time of capture() on a connected client.
 * The guest halts after filling (pvpanic with -action panic=none: it stays "running", so the snapshot
 * method applies), so every measurement sees the same memory. The load average is printed: the
 * machine is shared; compare ratios from one run.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressionCodec } from '../src/bundle/codec';
import { capture } from '../src/capture';
import { humanBytes } from '../src/util/bytes';
import { launchQemu, type LaunchedQemu } from '../src/guest';
import { QmpClient } from '../src/qmp';
import { runCaptureChild, type CaptureChildResult } from './lib/capture-child';

const ASSETS = join(__dirname, '..', '..', 'assets', 'guests');
const FILL_END_OFFSET = 0x1f8;

interface Row {
  scenario: string;
  what: string;
  seconds: number;
  bytes?: number;
  rssMiB?: number;
  note?: string;
}

function now(): number {
  return performance.now();
}

async function bootFilledGuest(dir: string, fillEnd: number, memory: string): Promise<{ qemu: LaunchedQemu; fillSeconds: number }> {
  const image = join(dir, 'fill.img');
  const sector = Buffer.from(readFileSync(join(ASSETS, 'fill.bin')));
  sector.writeUInt32LE(fillEnd, FILL_END_OFFSET);
  writeFileSync(image, sector);
  truncateSync(image, 1024 * 1024);
  const qemu = await launchQemu(['-drive', `file=${image},format=raw,if=ide`, '-device', 'pvpanic', '-action', 'panic=none'], { memory, startPaused: true });
  const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
  const t0 = now();
  await client.execute('cont');
  await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 300_000 });
  const fillSeconds = (now() - t0) / 1000;
  await client.close(); // one client per monitor: the measurements connect on their own
  return { qemu, fillSeconds };
}

/**
 * A snapshot's pause and QEMU's parts. x86 (this bench): vmpm sends no stop, so the pause is QEMU's
 * STOP to RESUME, and QEMU's setup ran before it, while the guest ran.
 */
/**
 * CPU seconds QEMU has used so far (user + system, all its threads; Linux /proc, USER_HZ 100). The
 * snapshot method moves work into QEMU (a write-protect ioctl per 4 KiB page, the migration stream),
 * which the machine's two cores pay for as much as vmpm's own CPU.
 */
function qemuCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function pauseParts(r: CaptureChildResult): string {
  if (r.qemuDowntimeMs === null || r.qemuSetupMs === null || r.pausedMs === null) return '';
  return ` (QEMU downtime ${r.qemuDowntimeMs} ms; QEMU setup ${r.qemuSetupMs} ms before it, guest running)`;
}

async function qemuDumpThenZstd(endpoint: string, dir: string, qemuPid: number): Promise<{ dump: number; zstd: number; elfBytes: number; zstBytes: number; qemuCpu: number }> {
  const elf = join(dir, 'baseline.elf');
  const client = await QmpClient.connect(endpoint);
  const cpu0 = qemuCpuSeconds(qemuPid);
  const t0 = now();
  await client.execute('dump-guest-memory', { paging: false, protocol: `file:${elf}` }, { timeoutMs: 600_000 });
  const dump = (now() - t0) / 1000;
  const qemuCpu = qemuCpuSeconds(qemuPid) - cpu0;
  await client.close();
  const t1 = now();
  execFileSync('zstd', ['-3', '-T2', '-q', '-f', elf, '-o', `${elf}.zst`]);
  const zstd = (now() - t1) / 1000;
  const result = { dump, zstd, elfBytes: statSync(elf).size, zstBytes: statSync(`${elf}.zst`).size, qemuCpu };
  rmSync(elf, { force: true });
  rmSync(`${elf}.zst`, { force: true });
  return result;
}

async function metadataOnly(endpoint: string, dir: string): Promise<{ ms: number; bytes: number }> {
  const client = await QmpClient.connect(endpoint, { allow: ['cont'] });
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    const r = await capture(client, { output: join(dir, 'meta.vmpm'), overwrite: true, quiesce: 'stop-and-restore', memory: 'none' });
    times.push(now() - t0);
    bytes = r.size;
  }
  await client.close();
  times.sort((a, b) => a - b);
  return { ms: times[2]!, bytes };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const scenarios = [
    { name: 'mixed 1 GiB', fillEnd: 0x40000000, memory: '1G', methods: ['dump', 'dump:portable', 'pmemsave', 'snapshot'] },
    { name: 'mostly zero', fillEnd: 0x200000 + 64 * 1024 * 1024, memory: '1G', methods: ['dump', 'dump:portable', 'pmemsave', 'snapshot'] },
    { name: '4 GiB, 1 GiB mixed', fillEnd: 0x40000000, memory: '4G', methods: ['dump', 'snapshot'] },
  ].filter((s) => !process.env.BENCH_ONLY || s.name.startsWith(process.env.BENCH_ONLY));
  const codecInUse = compressionCodec();
  const native = codecInUse.path === 'native';
  process.stderr.write(`codec: ${codecInUse.name}\n`);
  process.stderr.write(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  for (const s of scenarios) {
    const dir = mkdtempSync(join(tmpdir(), 'vmpm-bench-'));
    const { qemu, fillSeconds } = await bootFilledGuest(dir, s.fillEnd, s.memory);
    try {
      process.stderr.write(`${s.name}: guest filled its RAM in ${fillSeconds.toFixed(1)} s\n`);
      for (const entry of s.methods) {
        // 'dump:portable': the same capture with VMPM_CODEC=portable (zstd-codec), when the native codec is installed.
        const [method, codec] = entry.split(':') as [string, string | undefined];
        if (codec && !native) continue;
        const cpu0 = qemuCpuSeconds(qemu.pid);
        const { wallS: wall, result } = await runCaptureChild(qemu.endpoint, join(dir, `${method}.vmpm`), method, { env: codec ? { VMPM_CODEC: codec } : {} });
        if (result.memoryMethod !== method) throw new Error(`asked for ${method}, the capture used ${result.memoryMethod}`);
        rows.push({
          scenario: s.name,
          what: `vmpm capture (${method}${codec ? `, ${codec} codec` : ''})`,
          seconds: wall,
          bytes: result.size,
          rssMiB: result.maxRssMiB,
          note: `paused ${result.pausedMs === null ? '?' : `${Math.round(result.pausedMs)} ms`}${pauseParts(result)}; capture() ${(result.captureMs / 1000).toFixed(2)} s, vmpm CPU ${(result.cpuMs / 1000).toFixed(2)} s, QEMU CPU ${(qemuCpuSeconds(qemu.pid) - cpu0).toFixed(2)} s; ${result.zeroPages}/${result.pages} zero, ${result.dedupPages} dedup`,
        });
        rmSync(join(dir, `${method}.vmpm`), { force: true });
      }
      const base = await qemuDumpThenZstd(qemu.endpoint, dir, qemu.pid);
      rows.push({ scenario: s.name, what: 'QEMU dump-guest-memory to file', seconds: base.dump, bytes: base.elfBytes, note: `QEMU CPU ${base.qemuCpu.toFixed(2)} s` });
      rows.push({ scenario: s.name, what: 'zstd -3 -T2 of that file', seconds: base.zstd, bytes: base.zstBytes });
      rows.push({ scenario: s.name, what: 'baseline total (dump + zstd)', seconds: base.dump + base.zstd, bytes: base.zstBytes });
      const meta = await metadataOnly(qemu.endpoint, dir);
      rows.push({ scenario: s.name, what: 'vmpm capture --no-memory (in-process, median of 5)', seconds: meta.ms / 1000, bytes: meta.bytes });
    } finally {
      await qemu.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const header = ['scenario', 'measurement', 'seconds', 'size', 'peak RSS', 'note'];
  const lines = rows.map((r) => [
    r.scenario,
    r.what,
    r.seconds.toFixed(3),
    r.bytes === undefined ? '' : humanBytes(r.bytes),
    r.rssMiB === undefined ? '' : `${r.rssMiB} MiB`,
    r.note ?? '',
  ]);
  process.stderr.write(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]): string => `| ${cols.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`${fmt(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${lines.map(fmt).join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
