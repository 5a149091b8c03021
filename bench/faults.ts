/**
 * The fault table (issue 13): injects faults into real captures of the boot-sector guest and counts
 * outcomes. `node dist/bench/faults.js [RUNS-PER-FAULT] [MEMORY] [MINUTES]` (default 3, 1G, no limit).
 * A false-complete bundle is a file at the output path after a failed capture, or one there that
 * does not verify. Faults are run round-robin and each run is logged to stderr as it ends, so a run
 * stopped by MINUTES (no new round starts after it) still gives a table over every fault.
 * A signal is sent once the temporary bundle exists; if it does not appear within STRIKE_WAIT_MS (a
 * starved machine), the run strikes anyway and says so ("struck before the temporary bundle existed"),
 * because that is a different phase (start-up, the QMP connect). A QEMU that fails to launch (no QMP
 * socket within 15 s under load) is a harness failure, not a vmpm outcome: logged, retried up to
 * LAUNCH_ATTEMPTS times, then the run is skipped; the table counts both.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader } from '../src/bundle';
import { launchBootSectorGuest, type LaunchedQemu } from '../src/guest';
import { QmpClient } from '../src/qmp';

const BIN = join(__dirname, '..', '..', 'bin', 'vmpm');
type Fault = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'qemu-killed' | 'ulimit-f' | 'disk-full' | 'monitor-held';
const FAULTS: Fault[] = ['SIGINT', 'SIGTERM', 'SIGKILL', 'qemu-killed', 'ulimit-f', 'disk-full', 'monitor-held'];

/** How long to wait for the temporary bundle before striking anyway. */
const STRIKE_WAIT_MS = 60_000;
const LAUNCH_ATTEMPTS = 3;

/** QEMU did not start: the harness's failure, not an outcome of the fault. */
class LaunchFailure extends Error {}

interface Outcome {
  code: number | null;
  /** The signal that ended vmpm (its default action), or null. */
  signal: NodeJS.Signals | null;
  /** A signal fault struck before the temporary bundle existed (it did not appear within STRIKE_WAIT_MS). */
  struckEarly: boolean;
  oneLine: boolean;
  bundleAtPath: boolean;
  falseComplete: boolean;
}

async function runOne(fault: Fault, memory: string): Promise<Outcome> {
  const qemu: LaunchedQemu = await launchBootSectorGuest({ memory }).catch((err: unknown) => {
    throw new LaunchFailure(err instanceof Error ? err.message : String(err));
  });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fault-'));
  // disk-full: the output directory is a 64 KiB tmpfs (a real ENOSPC, not a file-size limit).
  const mounted = fault === 'disk-full' ? join(dir, 'tmpfs') : undefined;
  if (mounted) {
    mkdirSync(mounted);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mounted], { stdio: 'pipe' });
  }
  const outDir = mounted ?? dir;
  const out = join(outDir, 'f.vmpm');
  let holder: QmpClient | undefined;
  try {
    if (fault === 'monitor-held') holder = await QmpClient.connect(qemu.endpoint);
    const cmd = `${fault === 'ulimit-f' ? 'ulimit -f 64; ' : ''}exec '${process.execPath}' '${BIN}' capture --qmp '${qemu.endpoint}' -o '${out}' --memory-method dump`;
    // A private TMPDIR (inside the run's directory): a killed capture's FIFO directory is removed with it.
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const child = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp, VMPM_RUNTIME_DIR: join(dir, 'run') } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('close', (c, s) => r([c, s])));
    let struckEarly = false;
    if (['SIGINT', 'SIGTERM', 'SIGKILL', 'qemu-killed'].includes(fault)) {
      // Strike once the temporary bundle exists (the capture is under way), at a random point after.
      const partial = (): boolean => readdirSync(outDir).some((n) => n.includes('.partial-'));
      const until = Date.now() + STRIKE_WAIT_MS;
      while (!partial() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      struckEarly = !partial();
      await new Promise((r) => setTimeout(r, Math.random() * 200));
      if (fault === 'qemu-killed') process.kill(qemu.pid, 'SIGKILL');
      else child.kill(fault as NodeJS.Signals);
    }
    const [code, signal] = await closed;
    const lines = stderr.trimEnd().split('\n').filter((l) => l && !l.startsWith('vmpm: warning'));
    const bundleAtPath = existsSync(out);
    let verifies = false;
    if (bundleAtPath) {
      const v = await BundleReader.verifyFile(out).catch(() => ({ ok: false, reader: undefined }));
      await v.reader?.close();
      verifies = v.ok;
    }
    return { code, signal, struckEarly, oneLine: code === 0 || fault === 'SIGKILL' || (lines.length === 1 && lines[0]!.startsWith('vmpm: ')), bundleAtPath, falseComplete: bundleAtPath && (code !== 0 || !verifies) };
  } finally {
    await holder?.close().catch(() => undefined);
    await qemu.kill().catch(() => undefined);
    if (mounted) execFileSync('umount', [mounted]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const memory = process.argv[3] ?? '1G';
  const until = process.argv[4] ? Date.now() + Number(process.argv[4]) * 60_000 : Infinity;
  const faults = FAULTS.filter((f) => f !== 'disk-full' || process.getuid?.() === 0);
  if (faults.length < FAULTS.length) process.stderr.write('disk-full skipped: mounting a small tmpfs needs root\n');
  const results = new Map<Fault, Outcome[]>(faults.map((f) => [f, []]));
  const t0 = Date.now();
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(0)}s`;
  let launchFailures = 0;
  let skipped = 0;
  for (let i = 0; i < runs && Date.now() < until; i++) {
    for (const fault of faults) {
      let r: Outcome | undefined;
      for (let attempt = 1; attempt <= LAUNCH_ATTEMPTS && r === undefined; attempt++) {
        try {
          r = await runOne(fault, memory);
        } catch (err) {
          if (!(err instanceof LaunchFailure)) throw err;
          launchFailures++;
          process.stderr.write(`${elapsed()} ${fault} #${i + 1}: harness failure, QEMU did not start (attempt ${attempt} of ${LAUNCH_ATTEMPTS}): ${err.message}\n`);
          await new Promise((res) => setTimeout(res, 2_000 * attempt));
        }
      }
      if (r === undefined) {
        skipped++;
        process.stderr.write(`${elapsed()} ${fault} #${i + 1}: skipped (QEMU did not start)\n`);
        continue;
      }
      results.get(fault)!.push(r);
      const how = r.signal !== null ? `killed by ${r.signal}` : `exit ${r.code}`;
      process.stderr.write(`${elapsed()} ${fault} #${i + 1}: ${how}${r.struckEarly ? ', struck before the temporary bundle existed' : ''}${r.oneLine ? '' : ', not one line'}${r.bundleAtPath ? ', bundle at path' : ''}${r.falseComplete ? ', FALSE-COMPLETE' : ''}\n`);
    }
  }
  process.stdout.write('| fault | runs | completed anyway | failed cleanly (one line / signal) | false-complete bundles | exit codes | struck before the temporary bundle existed |\n| --- | --- | --- | --- | --- | --- | --- |\n');
  let total = 0;
  let falseComplete = 0;
  for (const [fault, rs] of results) {
    const codes = [...new Set(rs.map((r) => (r.signal !== null ? r.signal : String(r.code))))].join(', ');
    const early = rs.filter((r) => r.struckEarly).length;
    const completed = rs.filter((r) => r.code === 0 && r.bundleAtPath && !r.falseComplete).length;
    const clean = rs.filter((r) => r.code !== 0 && r.oneLine && !r.bundleAtPath).length;
    const fc = rs.filter((r) => r.falseComplete).length;
    total += rs.length;
    falseComplete += fc;
    process.stdout.write(`| ${fault} | ${rs.length} | ${completed} | ${clean} | ${fc} | ${codes} | ${early} |\n`);
  }
  process.stdout.write(`\n${total} injected faults in ${((Date.now() - t0) / 60_000).toFixed(1)} min, ${falseComplete} false-complete bundles; harness: ${launchFailures} QEMU launch failures, ${skipped} runs skipped\n`);
  process.exitCode = falseComplete > 0 ? 1 : 0;
}

void main();
