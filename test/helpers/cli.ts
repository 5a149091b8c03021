import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** With `peakRss`: the vmpm process's peak resident memory in KiB (GNU time), undefined without /usr/bin/time. */
  peakKb?: number;
  ms: number;
}

const GNU_TIME = '/usr/bin/time';

/** Absolute path of the `vmpm` launcher in this checkout. */
export const VMPM_BIN = join(__dirname, '..', '..', '..', 'bin', 'vmpm');

/**
 * Runs the real `bin/vmpm` in a child process, the way a user or script would, and collects its
 * output. A timeout kills it so a hanging command fails the test instead of the whole run.
 */
export async function runCli(
  args: string[],
  options: {
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    input?: string;
    /** Run as this user (the test must be root), e.g. "nobody". */
    asUser?: string;
    /** Measure the peak RSS: run under GNU time (`%M`) when /usr/bin/time exists. */
    peakRss?: boolean;
  } = {},
): Promise<CliResult> {
  const timeDir = options.peakRss && existsSync(GNU_TIME) ? mkdtempSync(join(tmpdir(), 'vmpm-time-')) : undefined;
  const timeFile = timeDir === undefined ? undefined : join(timeDir, 'time.txt');
  const [cmd, argv] = timeFile === undefined ? [process.execPath, [VMPM_BIN, ...args]] : [GNU_TIME, ['-f', '%M', '-o', timeFile, process.execPath, VMPM_BIN, ...args]];
  const run = spawnCollecting(cmd, argv, {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    input: options.input ?? '',
    // Under GNU time vmpm is a grandchild: its own process group lets the timeout kill both (killing
    // only `time` would leave vmpm holding the pipes open, and 'close' would never come).
    detached: timeFile !== undefined,
    ...(options.asUser !== undefined ? userIds(options.asUser) : {}),
    timeoutMs: options.timeoutMs ?? 60_000,
  });
  return run.done.then(({ code, signal, stdout, stderr, ms }) => {
    const result: CliResult = { code: code ?? (signal ? 128 : 1), stdout, stderr, ms };
    if (timeFile !== undefined && existsSync(timeFile)) {
      // GNU time prefixes "Command exited with non-zero status N" on a line of its own.
      const n = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop());
      if (Number.isFinite(n)) result.peakKb = n;
    }
    if (timeDir !== undefined) rmSync(timeDir, { recursive: true, force: true });
    return result;
  });
}

export interface NodeResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The timeout ran out and the child was sent SIGKILL. */
  timedOut: boolean;
}

export interface NodeRun {
  pid: number;
  /** child.kill(): false, not an error, once the child is gone. */
  kill(signal: NodeJS.Signals): boolean;
  /** Settles once the child exited and its stdout and stderr closed. */
  done: Promise<NodeResult>;
}

/**
 * Runs `node SCRIPT ARGS...` (SCRIPT a file, or '-e' with the code as the first of ARGS; stdin closed, `env` added to this process's environment), collecting its
 * stdout and stderr; SIGKILLed after `timeoutMs` (default 60 s) so a hang fails the test, not the run.
 * The pid is there at once, for a test that signals the child while it runs.
 */
export function runNode(script: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): NodeRun {
  return spawnCollecting(process.execPath, [script, ...args], { env: { ...process.env, ...options.env }, timeoutMs: options.timeoutMs ?? 60_000 });
}

/**
 * spawn() collecting stdout and stderr; stdin gets `input` (closed at once without it). After
 * `timeoutMs` the child gets SIGKILL, its whole process group when `detached`.
 */
function spawnCollecting(
  cmd: string,
  argv: string[],
  options: { cwd?: string; env: NodeJS.ProcessEnv; input?: string; detached?: boolean; uid?: number; gid?: number; timeoutMs: number },
): NodeRun {
  const t0 = Date.now();
  const { input, timeoutMs, ...spawnOptions } = options;
  const child = spawn(cmd, argv, { ...spawnOptions, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const done = new Promise<NodeResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (options.detached && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
    });
  });
  if (input !== undefined) child.stdin!.end(input);
  return { pid: child.pid!, kill: (signal) => child.kill(signal), done };
}

/** uid and gid of a local user, from /etc/passwd. */
export function userIds(user: string): { uid: number; gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const f = entry?.split(':');
  if (!f || f.length < 4) throw new Error(`no user ${user} in /etc/passwd`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}
