import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli';

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

/**
 * Runs `vmpm ARGS` with a private output directory and TMPDIR (where capture makes its FIFO
 * directories), measuring its peak RSS (runCli's peakRss). `{out}` in ARGS is replaced by the output
 * directory.
 */
export async function runHostile(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<HostileRun> {
  const root = mkdtempSync(join(tmpdir(), 'vmpm-hostile-'));
  roots.push(root);
  const out = join(root, 'out');
  const tmp = join(root, 'tmp');
  mkdirSync(out);
  mkdirSync(tmp);
  const r = await runCli(
    args.map((a) => a.replace('{out}', out)),
    { peakRss: true, timeoutMs: options.timeoutMs ?? 60_000, env: { TMPDIR: tmp, ...options.env } },
  );
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, peakKb: r.peakKb, outFiles: readdirSync(out), tmpFiles: readdirSync(tmp), ms: r.ms, outDir: out };
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
