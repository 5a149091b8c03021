import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VMPM_BIN } from '../helpers/cli';

export interface HostileRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak resident memory of the vmpm process in KiB (from GNU time), or undefined without it. */
  peakKb: number | undefined;
  /** What is left in the output directory, and in the private TMPDIR (FIFO directories). */
  outFiles: string[];
  tmpFiles: string[];
  ms: number;
  outDir: string;
}

const roots: string[] = [];
/** Deletes every directory runHostile made (call from after()). */
export function cleanupHostileRuns(): void {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
}

const GNU_TIME = '/usr/bin/time';

/**
 * Runs `vmpm ARGS` with a private output directory and TMPDIR (where capture makes its FIFO
 * directories), under GNU time when present so the peak RSS is known. `{out}` in ARGS is replaced
 * by the output directory.
 */
export function runHostile(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<HostileRun> {
  const root = mkdtempSync(join(tmpdir(), 'vmpm-hostile-'));
  roots.push(root);
  const out = join(root, 'out');
  const tmp = join(root, 'tmp');
  mkdirSync(out);
  mkdirSync(tmp);
  const timeFile = join(root, 'time.txt');
  const real = args.map((a) => a.replace('{out}', out));
  const useTime = existsSync(GNU_TIME);
  const argv = useTime ? ['-f', '%M', '-o', timeFile, process.execPath, VMPM_BIN, ...real] : [VMPM_BIN, ...real];
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(useTime ? GNU_TIME : process.execPath, argv, {
      env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let peakKb: number | undefined;
      if (useTime && existsSync(timeFile)) {
        const text = readFileSync(timeFile, 'utf8');
        // GNU time prefixes "Command exited with non-zero status N" on its own line.
        const n = Number(text.trim().split('\n').pop());
        if (Number.isFinite(n)) peakKb = n;
      }
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, peakKb, outFiles: readdirSync(out), tmpFiles: readdirSync(tmp), ms: Date.now() - t0, outDir: out });
    });
  });
}

/** One `vmpm: ...` line on stderr (warnings allowed before it), no stack trace, no internal TypeError. */
export function oneLineFailure(r: HostileRun): string | undefined {
  const lines = r.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('vmpm: warning: '));
  if (r.code !== 1) return `exit ${r.code}`;
  if (lines.length !== 1) return `${lines.length} lines`;
  if (!/^vmpm: /.test(lines[0]!)) return 'not a vmpm: line';
  if (/unexpected error|Cannot read properties|is not a function|is not iterable|undefined/.test(lines[0]!)) return 'an internal error leaked';
  return undefined;
}
