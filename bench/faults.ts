/**
 * The fault table (issue 13): injects faults into real captures of the boot-sector guest and counts
 * outcomes. `node dist/bench/faults.js [RUNS-PER-FAULT] [MEMORY]` (default 3, 1G). A false-complete
 * bundle is a file at the output path after a failed capture, or one there that does not verify.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader } from '../src/bundle';
import { launchBootSectorGuest, type LaunchedQemu } from '../src/guest';
import { QmpClient } from '../src/qmp';

const BIN = join(__dirname, '..', '..', 'bin', 'vmpm');
type Fault = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'qemu-killed' | 'ulimit-f' | 'monitor-held';
const FAULTS: Fault[] = ['SIGINT', 'SIGTERM', 'SIGKILL', 'qemu-killed', 'ulimit-f', 'monitor-held'];

interface Outcome {
  code: number | null;
  oneLine: boolean;
  bundleAtPath: boolean;
  falseComplete: boolean;
}

async function runOne(fault: Fault, memory: string): Promise<Outcome> {
  const qemu: LaunchedQemu = await launchBootSectorGuest({ memory });
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fault-'));
  const out = join(dir, 'f.vmpm');
  let holder: QmpClient | undefined;
  try {
    if (fault === 'monitor-held') holder = await QmpClient.connect(qemu.endpoint);
    const cmd = `${fault === 'ulimit-f' ? 'ulimit -f 64; ' : ''}exec '${process.execPath}' '${BIN}' capture --qmp '${qemu.endpoint}' -o '${out}' --memory-method dump`;
    const child = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    if (['SIGINT', 'SIGTERM', 'SIGKILL', 'qemu-killed'].includes(fault)) {
      // Strike once the temporary bundle exists (the capture is under way), at a random point after.
      const until = Date.now() + 15_000;
      while (!readdirSync(dir).some((n) => n.includes('.partial-')) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, Math.random() * 200));
      if (fault === 'qemu-killed') process.kill(qemu.pid, 'SIGKILL');
      else child.kill(fault as NodeJS.Signals);
    }
    const code = await closed;
    const lines = stderr.trimEnd().split('\n').filter((l) => l && !l.startsWith('vmpm: warning'));
    const bundleAtPath = existsSync(out);
    let verifies = false;
    if (bundleAtPath) {
      const v = await BundleReader.verifyFile(out).catch(() => ({ ok: false, reader: undefined }));
      await v.reader?.close();
      verifies = v.ok;
    }
    return { code, oneLine: code === 0 || fault === 'SIGKILL' || (lines.length === 1 && lines[0]!.startsWith('vmpm: ')), bundleAtPath, falseComplete: bundleAtPath && (code !== 0 || !verifies) };
  } finally {
    await holder?.close().catch(() => undefined);
    await qemu.kill().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const memory = process.argv[3] ?? '1G';
  process.stdout.write('| fault | runs | completed anyway | failed cleanly (one line / signal) | false-complete bundles | exit codes |\n| --- | --- | --- | --- | --- | --- |\n');
  let total = 0;
  let falseComplete = 0;
  for (const fault of FAULTS) {
    const results: Outcome[] = [];
    for (let i = 0; i < runs; i++) results.push(await runOne(fault, memory));
    const codes = [...new Set(results.map((r) => String(r.code)))].join(', ');
    const completed = results.filter((r) => r.code === 0 && r.bundleAtPath && !r.falseComplete).length;
    const clean = results.filter((r) => r.code !== 0 && r.oneLine && !r.bundleAtPath).length;
    const fc = results.filter((r) => r.falseComplete).length;
    total += runs;
    falseComplete += fc;
    process.stdout.write(`| ${fault} | ${runs} | ${completed} | ${clean} | ${fc} | ${codes} |\n`);
  }
  process.stdout.write(`\n${total} injected faults, ${falseComplete} false-complete bundles\n`);
  process.exitCode = falseComplete > 0 ? 1 : 0;
}

void main();
