import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Absolute path of the `vmpm` launcher in this checkout. */
export const VMPM_BIN = join(__dirname, '..', '..', '..', 'bin', 'vmpm');

/**
 * Runs the real `bin/vmpm` in a child process, the way a user or script would, and collects its
 * output. A timeout kills it so a hanging command fails the test instead of the whole run.
 */
export function runCli(
  args: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; input?: string; /** Run as this user (the test must be root), e.g. "nobody". */ asUser?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VMPM_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.asUser !== undefined ? userIds(options.asUser) : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** uid and gid of a local user, from /etc/passwd. */
export function userIds(user: string): { uid: number; gid: number } {
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const f = entry?.split(':');
  if (!f || f.length < 4) throw new Error(`no user ${user} in /etc/passwd`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}
