/**
 * Runs bench/capture-child.js (one vmpm capture in a fresh process, so its peak RSS is its own) and
 * parses the JSON line it prints.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CaptureSummary } from '../../src/capture';

const CHILD = join(__dirname, '..', 'capture-child.js');
const TIME = '/usr/bin/time';

/** What bench/capture-child.ts prints (the page counts are the capture summary's). */
export interface CaptureChildResult extends Pick<CaptureSummary, 'pages' | 'zeroPages' | 'storedPages' | 'dedupPages'> {
  connectMs: number;
  captureMs: number;
  cpuMs: number;
  size: number;
  maxRssMiB: number;
  memoryMethod: string;
  pausedMs: number | null;
  qemuDowntimeMs: number | null;
  qemuSetupMs: number | null;
}

export interface CaptureChildRun {
  /** Wall time of the whole child process (node start, connect, capture, exit). */
  wallS: number;
  result: CaptureChildResult;
  /** Peak RSS of the child as /usr/bin/time -v reports it; null unless `timeV` and time is installed. */
  timeRssMiB: number | null;
}

/**
 * `node capture-child.js ENDPOINT OUT METHOD` with `env` added to this process's environment; with
 * `timeV`, under `/usr/bin/time -v` where that exists.
 */
export function runCaptureChild(endpoint: string, out: string, method: string, options: { env?: Record<string, string>; timeV?: boolean } = {}): Promise<CaptureChildRun> {
  const node = [process.execPath, CHILD, endpoint, out, method];
  const [cmd, ...args] = options.timeV && existsSync(TIME) ? [TIME, '-v', ...node] : node;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`capture child failed: ${stderr.trim()}`));
      const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ wallS: (performance.now() - t0) / 1000, result: JSON.parse(stdout) as CaptureChildResult, timeRssMiB: kb ? Math.round(Number(kb[1]) / 1024) : null });
    });
  });
}
