/**
 * Helpers for watch tests against real QEMU: a `vmpm watch` child process whose stdout lines and
 * stderr are collected as they arrive, guests with a second QMP socket for the watcher (QEMU allows
 * one client per -qmp socket), and a hand-assembled boot sector that enables machine checks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startQemu, escapeQemuOptionValue, type LaunchedQemu, type LaunchOptions } from '../../src/guest/launch';
import { QmpClient } from '../../src/qmp';
import type { IncidentNotification } from '../../src/watch/notify';
import { VMPM_BIN } from '../helpers/cli';

export const ASSETS = join(__dirname, '..', '..', '..', 'assets', 'guests');

export interface WatchProcess {
  child: ChildProcess;
  /** The `incident` lines on stdout. */
  notifications: IncidentNotification[];
  /** Every stdout line, parsed (incident lines and the `signature` lines that follow them under --sign-key). */
  lines: Array<{ type: string } & Record<string, unknown>>;
  stdout(): string;
  stderr(): string;
  /** Resolves with the n-th (1-based) notification, or rejects after timeoutMs with the stderr log. */
  notification(n: number, timeoutMs?: number): Promise<IncidentNotification>;
  /** Resolves once stderr contains `text` `count` times. */
  logged(text: string, count?: number, timeoutMs?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  kill(): Promise<void>;
}

export function startWatch(args: string[]): WatchProcess {
  const child = spawn(process.execPath, [VMPM_BIN, 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  let err = '';
  const notifications: IncidentNotification[] = [];
  const parsed: WatchProcess['lines'] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    const lines = out.split('\n');
    for (const line of lines.slice(parsed.length, -1)) {
      const value = JSON.parse(line) as WatchProcess['lines'][number];
      parsed.push(value);
      if (value.type === 'incident') notifications.push(value as unknown as IncidentNotification);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const poll = async (ok: () => boolean, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; watch stderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    child,
    notifications,
    lines: parsed,
    stdout: () => out,
    stderr: () => err,
    async notification(n, timeoutMs = 20_000) {
      await poll(() => notifications.length >= n, `notification #${n}`, timeoutMs);
      return notifications[n - 1]!;
    },
    logged: (text, count = 1, timeoutMs = 15_000) => poll(() => err.split(text).length - 1 >= count, `"${text}" x${count} in the log`, timeoutMs),
    exited,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** -qmp option for an extra monitor socket the watcher uses. */
export function extraQmp(path: string): string[] {
  return ['-qmp', `unix:${escapeQemuOptionValue(path)},server=on,wait=off`];
}

export async function withClient<T>(endpoint: string, fn: (c: QmpClient) => Promise<T>): Promise<T> {
  const c = await QmpClient.connect(endpoint, { allow: ['cont', 'mce', 'o'] });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

export async function waitForStatus(c: QmpClient, status: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await c.execute<{ status: string }>('query-status');
    if (s.status === status) return;
    if (Date.now() > deadline) throw new Error(`VM status stayed ${s.status}, expected ${status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The blkread guest with its second disk behind blkdebug (every read fails with EIO, rerror=stop). */
export function launchBlockErrorGuest(options: Partial<LaunchOptions>): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'x86_64' }, (dir) => {
    const boot = join(dir, 'blkread.img');
    copyFileSync(join(ASSETS, 'blkread.bin'), boot);
    truncateSync(boot, 1 << 20);
    const disk = join(dir, 'disk2.img');
    writeFileSync(disk, Buffer.alloc(1 << 20));
    const cfg = join(ASSETS, 'blkdebug-eio.cfg');
    return [
      '-drive', `file=${escapeQemuOptionValue(boot)},format=raw,if=ide,index=0`,
      '-drive', `file=blkdebug:${escapeQemuOptionValue(cfg)}:${escapeQemuOptionValue(disk)},format=raw,if=ide,index=2,rerror=stop,werror=stop`,
      '-device', 'pvpanic',
    ];
  });
}

/**
 * A boot sector that sets CR4.MCE and halts, so QEMU delivers an uncorrected HMP `mce` to the guest
 * (MEMORY_FAILURE action inject) instead of raising a triple fault (action reset). Its own #MC handler
 * (IVT[18]) is a bare `iret`, so a machine check changes no register (the BIOS vector 0x12 would be
 * INT 12h, which rewrites AX). Hand-assembled (org 0x7c00):
 *   cli; xor ax,ax; mov ds,ax; mov word [0x48],mc; mov word [0x4a],0
 *   mov eax,cr4; or eax,0x40; mov cr4,eax; .l: hlt; jmp .l; mc: iret      (mc = 0x7c1e)
 */
export const MCE_BOOT_SECTOR = (() => {
  const code = Buffer.from([
    0xfa, 0x31, 0xc0, 0x8e, 0xd8,
    0xc7, 0x06, 0x48, 0x00, 0x1e, 0x7c,
    0xc7, 0x06, 0x4a, 0x00, 0x00, 0x00,
    0x0f, 0x20, 0xe0, 0x66, 0x83, 0xc8, 0x40, 0x0f, 0x22, 0xe0,
    0xf4, 0xeb, 0xfd,
    0xcf,
  ]);
  const sector = Buffer.alloc(512);
  code.copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
})();

export function launchMceGuest(options: Partial<LaunchOptions>): Promise<LaunchedQemu> {
  return startQemu({ ...options, arch: 'x86_64' }, (dir) => {
    const image = join(dir, 'mce.img');
    writeFileSync(image, MCE_BOOT_SECTOR);
    truncateSync(image, 1 << 20);
    return ['-drive', `file=${escapeQemuOptionValue(image)},format=raw,if=ide`];
  });
}
