import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VmpmError } from '../util/errors';
import { findQemu, type GuestArch } from './find-qemu';

export interface LaunchOptions {
  arch?: GuestArch;
  /** QEMU -m value, default "64M". */
  memory?: string;
  smp?: number;
  extraArgs?: string[];
  /** -S: vCPUs do not run until `cont`, so a client can connect before anything happens. */
  startPaused?: boolean;
  name?: string;
  uuid?: string;
  /** -no-shutdown (default true): a guest that powers off or panics stays inspectable. */
  noShutdown?: boolean;
  /** Guest serial port written to this file (-serial file:...). */
  serialFile?: string;
}

export interface LaunchedQemu {
  /** Path of the QMP unix socket inside `dir`. */
  qmpPath: string;
  /** `unix:<qmpPath>`, ready for QmpClient.connect. */
  endpoint: string;
  pid: number;
  /** Private temp directory (socket, disk copies); removed by kill(). */
  dir: string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** What QEMU wrote on stderr so far (last 64 KiB). */
  stderr(): string;
  /** Stops QEMU (SIGTERM, then SIGKILL) and removes `dir`. Safe to call any number of times. */
  kill(): Promise<void>;
}

const SOCKET_WAIT_MS = 15_000;
const SOCKET_POLL_MS = 10;
const STDERR_KEEP_BYTES = 64 * 1024;
const TERM_GRACE_MS = 2_000;

/** Every QEMU we started and have not reaped: killed if the Node process exits without kill(). */
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of live) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** QEMU option values separate sub-options with commas; a literal comma is written twice. */
export function escapeQemuOptionValue(value: string): string {
  return value.replace(/,/g, ',,');
}

/**
 * Starts QEMU with `machineArgs` (drives, devices, -M ...) plus vmpm's standard options, and resolves
 * once the QMP socket exists. The socket is created with wait=off, so nothing blocks on a client.
 */
export function launchQemu(machineArgs: string[], options: LaunchOptions = {}): Promise<LaunchedQemu> {
  return startQemu(options, () => machineArgs);
}

/**
 * Like launchQemu, but `prepare` runs first with the private temp dir, so callers can place disk
 * images there and return machine arguments that refer to them.
 */
export async function startQemu(
  options: LaunchOptions,
  prepare: (dir: string) => string[] | Promise<string[]>,
): Promise<LaunchedQemu> {
  const arch = options.arch ?? 'x86_64';
  const binary = findQemu(arch);
  if (binary === undefined) {
    const pkg = arch === 'aarch64' ? 'qemu-system-arm' : 'qemu-system-x86';
    throw new VmpmError(`qemu-system-${arch} not found on PATH (install ${pkg})`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-qemu-'));
  let machineArgs: string[];
  try {
    machineArgs = await prepare(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const qmpPath = join(dir, 'qmp.sock');
  return waitForSocket(spawnQemu(binary, qemuArgs(options, qmpPath, machineArgs), dir, qmpPath));
}

/** vmpm's standard options (TCG, no display, panic pauses, the QMP socket) around the machine's own. */
function qemuArgs(options: LaunchOptions, qmpPath: string, machineArgs: string[]): string[] {
  const args = [
    '-accel', 'tcg',
    '-display', 'none',
    '-nodefaults',
    '-action', 'panic=pause',
    '-m', options.memory ?? '64M',
    '-qmp', `unix:${escapeQemuOptionValue(qmpPath)},server=on,wait=off`,
  ];
  if (options.noShutdown !== false) args.push('-no-shutdown');
  if (options.startPaused) args.push('-S');
  if (options.smp !== undefined) args.push('-smp', String(options.smp));
  if (options.name !== undefined) args.push('-name', options.name);
  if (options.uuid !== undefined) args.push('-uuid', options.uuid);
  if (options.serialFile !== undefined) args.push('-serial', `file:${escapeQemuOptionValue(options.serialFile)}`);
  args.push(...machineArgs, ...(options.extraArgs ?? []));
  return args;
}

/** A running QEMU child with its stderr tail kept and an idempotent kill that also removes `dir`. */
interface QemuChild {
  launched: LaunchedQemu;
  hasExited: () => boolean;
}

function spawnQemu(binary: string, args: string[], dir: string, qmpPath: string): QemuChild {
  installExitHook();
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.set(child, dir);
  let stderrText = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderrText += chunk;
    if (stderrText.length > STDERR_KEEP_BYTES) stderrText = stderrText.slice(-STDERR_KEEP_BYTES);
  });
  let hasExited = false;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on('error', (err) => {
      stderrText += `spawn failed: ${err.message}\n`;
      hasExited = true;
      resolve({ code: null, signal: null });
    });
    child.on('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });

  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killing ??= (async () => {
      if (!hasExited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), TERM_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      live.delete(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return killing;
  };
  const launched: LaunchedQemu = {
    qmpPath,
    endpoint: `unix:${qmpPath}`,
    pid: child.pid ?? -1,
    dir,
    exited,
    stderr: () => stderrText,
    kill,
  };
  return { launched, hasExited: () => hasExited };
}

/** Resolves once QEMU listens on its QMP socket; kills it (and says why) when it exits first or takes too long. */
async function waitForSocket({ launched, hasExited }: QemuChild): Promise<LaunchedQemu> {
  const { qmpPath } = launched;
  const deadline = Date.now() + SOCKET_WAIT_MS;
  for (;;) {
    if (hasExited()) {
      const { code, signal } = await launched.exited;
      await launched.kill();
      const why = launched.stderr().trim().split('\n').slice(-3).join(' | ') || 'no message on stderr';
      throw new VmpmError(`QEMU exited before opening its QMP socket (code ${code}, signal ${signal}): ${why}`);
    }
    if (socketExists(qmpPath) && (await socketListening(qmpPath))) return launched;
    if (Date.now() > deadline) {
      await launched.kill();
      throw new VmpmError(`QEMU did not create its QMP socket ${qmpPath} within ${SOCKET_WAIT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, SOCKET_POLL_MS));
  }
}

/**
 * QEMU binds the socket (the file appears) a moment before it listens; a client connecting in
 * between gets ECONNREFUSED. On Linux /proc/net/unix shows the listening flag without touching the
 * monitor; elsewhere, a connect that is closed at once is the probe (QEMU then serves the next client).
 */
async function socketListening(path: string): Promise<boolean> {
  let table: string | undefined;
  try {
    table = readFileSync('/proc/net/unix', 'utf8');
  } catch {
    table = undefined;
  }
  if (table !== undefined) {
    const SO_ACCEPTCON = 0x10000;
    return table.split('\n').some((line) => {
      if (!line.endsWith(` ${path}`)) return false;
      const flags = parseInt(line.trim().split(/\s+/)[3] ?? '0', 16);
      return (flags & SO_ACCEPTCON) !== 0;
    });
  }
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function socketExists(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
