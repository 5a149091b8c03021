/**
 * Export/import benchmark (issue 11; run manually: `npx tsc -p . && node dist/bench/interop.js`, a few
 * minutes). One 1 GiB guest that fills its own RAM (assets/guests/fill.asm, the realistic mix bench/
 * capture.ts uses), stopped; in one run, each a separate process timed by /usr/bin/time (wall, peak RSS):
 *   - vmpm capture (dump) of the guest, and QEMU's own dump-guest-memory ELF of it;
 *   - vmpm import of that ELF: the goal is within 1.2x of the capture;
 *   - vmpm export --format elf / raw / kdump of the captured bundle;
 *   - the yardstick for export: `zstd -d` of the same memory to a file (the raw image compressed with
 *     `zstd -3 -T2` beforehand, untimed; zstd -d writes the whole 1 GiB, zeros as sparse holes).
 * VMPM_BENCH_BASELINE=/path/to/other/bin/vmpm (another build, e.g. an older commit's): its import and
 * exports are timed too, each right after this build's, so a change is measured in the same run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchQemu, type LaunchedQemu } from '../src/guest';
import { QmpClient } from '../src/qmp';
import { humanBytes } from '../src/util/bytes';

const ASSETS = join(__dirname, '..', '..', 'assets', 'guests');
const VMPM = join(__dirname, '..', '..', 'bin', 'vmpm');
const BASELINE = process.env.VMPM_BENCH_BASELINE;
const FILL_END_OFFSET = 0x1f8;

interface Row {
  what: string;
  seconds: number;
  /** User + system CPU seconds of the process (all its threads). */
  cpu?: number;
  rssMiB?: number;
  bytes?: number;
  note?: string;
}

/** Runs a command under /usr/bin/time: wall seconds, CPU seconds (user + system) and peak RSS of the process. */
function timedRun(cmd: string, args: string[]): { seconds: number; cpu: number; rssMiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no timing from /usr/bin/time: ${r.stderr}`);
  return { seconds: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMiB: Math.round(Number(m[4]) / 1024) };
}

/** The 1-minute load average (the machine is shared: the README says how quiet a run was). */
function load(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
}

async function bootFilledGuest(dir: string): Promise<LaunchedQemu> {
  const image = join(dir, 'fill.img');
  const sector = Buffer.from(readFileSync(join(ASSETS, 'fill.bin')));
  sector.writeUInt32LE(0x40000000, FILL_END_OFFSET);
  writeFileSync(image, sector);
  truncateSync(image, 1024 * 1024);
  const qemu = await launchQemu(['-drive', `file=${image},format=raw,if=ide`, '-device', 'pvpanic'], { memory: '1G', startPaused: true });
  const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
  await client.execute('cont');
  await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 600_000 });
  await client.close();
  return qemu;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-bench-interop-'));
  const rows: Row[] = [];
  const loadBefore = load();
  const qemu = await bootFilledGuest(dir);
  try {
    const bundle = join(dir, 'cap.vmpm');
    const cap = timedRun(process.execPath, [VMPM, 'capture', '--qmp', qemu.endpoint, '-o', bundle]);
    rows.push({ what: 'vmpm capture (dump) of the 1 GiB guest', ...cap, bytes: statSync(bundle).size });
    const elf = join(dir, 'qemu.elf');
    const client = await QmpClient.connect(qemu.endpoint);
    const t0 = performance.now();
    await client.execute('dump-guest-memory', { paging: false, protocol: `file:${elf}` }, { timeoutMs: 600_000 });
    rows.push({ what: 'QEMU dump-guest-memory ELF to a file', seconds: (performance.now() - t0) / 1000, bytes: statSync(elf).size });
    await client.close();
    const builds: Array<[string, string]> = [['', VMPM], ...(BASELINE ? [[' (baseline build)', BASELINE] as [string, string]] : [])];
    for (const [label, bin] of builds) {
      const out = join(dir, `imp${label ? '-baseline' : ''}.vmpm`);
      const imp = timedRun(process.execPath, [bin, 'import', elf, '-o', out]);
      rows.push({ what: `vmpm import of that ELF${label}`, ...imp, bytes: statSync(out).size, note: `${(imp.seconds / cap.seconds).toFixed(2)}x the capture (goal <= 1.2x)` });
      rmSync(out, { force: true });
    }
    rmSync(elf, { force: true });

    const exports: Row[] = [];
    for (const format of ['elf', 'raw', 'kdump']) {
      for (const [label, bin] of builds) {
        const out = join(dir, `exp${label ? '-baseline' : ''}.${format}`);
        const t = timedRun(process.execPath, [bin, 'export', bundle, '--format', format, '-o', out]);
        exports.push({ what: `vmpm export --format ${format}${label}`, ...t, bytes: statSync(out).blocks * 512 });
        if (format !== 'raw' || label) rmSync(out, { force: true });
        if (label) rmSync(`${out}.ranges.json`, { force: true });
      }
    }
    execFileSync('zstd', ['-3', '-T2', '-q', '-f', join(dir, 'exp.raw'), '-o', join(dir, 'raw.zst')]);
    const zd2 = timedRun('zstd', ['-d', '-q', '-f', join(dir, 'raw.zst'), '-o', join(dir, 'raw.out')]);
    const zd2Bytes = statSync(join(dir, 'raw.out')).blocks * 512;
    rmSync(join(dir, 'raw.out'), { force: true });
    // An export fsyncs its output before linking it into place (0.9 s of a 2.9 s export, strace, load 7);
    // zstd -d leaves its output to the page cache: the second yardstick adds that fsync (coreutils sync FILE).
    const zd2s = timedRun('sh', ['-c', `zstd -d -q -f '${join(dir, 'raw.zst')}' -o '${join(dir, 'raw.out')}' && sync '${join(dir, 'raw.out')}'`]);
    for (const e of exports) {
      rows.push({ ...e, note: `${(e.seconds / zd2.seconds).toFixed(2)}x zstd -d (goal <= 1x), ${(e.seconds / zd2s.seconds).toFixed(2)}x zstd -d + fsync; size = blocks on disk` });
    }
    rows.push({ what: 'zstd -d of the raw image (.zst -3) to a file', ...zd2, bytes: zd2Bytes, note: 'yardstick for export' });
    rows.push({ what: 'the same, then sync of the output file (as export fsyncs)', ...zd2s, note: 'yardstick for a durable export' });
  } finally {
    await qemu.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `load average (1 min) before ${loadBefore}, after ${load()}`,
    '',
    '| measurement | seconds | CPU s | peak RSS | size | note |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.what} | ${r.seconds.toFixed(2)} | ${r.cpu === undefined ? '' : r.cpu.toFixed(2)} | ${r.rssMiB === undefined ? '' : `${r.rssMiB} MiB`} | ${r.bytes === undefined ? '' : humanBytes(r.bytes)} | ${r.note ?? ''} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench/interop: ${(err as Error).message}\n`);
  process.exit(1);
});
