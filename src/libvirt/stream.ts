/**
 * A long-running virsh (`event --loop`, `qemu-monitor-event --loop`) read line by line. Lines are
 * bounded (a line longer than MAX_LINE ends the stream: virsh never prints one for an event), the
 * process is killed on close(), and its end is reported once with virsh's own error lines
 * ("Disconnected from qemu:///system due to end of file" when libvirtd goes away).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { virshErrorLines } from './errors';
import type { Virsh } from './virsh';

const MAX_LINE = 1024 * 1024;
/**
 * util-linux's setpriv (essential on Debian) gives virsh a parent-death signal: a vmpm killed with
 * SIGKILL (systemd's last resort) must not leave `virsh ... --loop` processes behind it forever.
 */
const SETPRIV = '/usr/bin/setpriv';
const STDERR_KEEP = 8192;

export interface StreamEnd {
  code: number | null;
  signal: string | null;
  /** virsh's error lines, or why vmpm ended it. */
  reason: string;
  /** True when close() ended it. */
  byUs: boolean;
  /** virsh's stderr (the end of it), for classifying the failure. */
  stderr: string;
}

export class VirshStream {
  readonly command: string;
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private buffer = '';
  private stderr = '';
  private closedByUs = false;
  private overflow = false;
  readonly ended: Promise<StreamEnd>;
  /** Resolves once virsh has written its first byte or ended: the subscription is in place. */
  private spawned = false;

  constructor(virsh: Virsh, args: string[], onLine: (line: string) => void) {
    this.command = virsh.commandLine(args);
    const [cmd, argv] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', '--', virsh.binary, ...virsh.argv(args)]] : [virsh.binary, virsh.argv(args)];
    this.child = spawn(cmd, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.trim() !== '') onLine(line);
      }
      if (this.buffer.length > MAX_LINE) {
        this.overflow = true;
        this.child.kill('SIGKILL');
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
    });
    this.child.on('spawn', () => (this.spawned = true));
    this.ended = new Promise((resolve) => {
      this.child.on('error', (err) => resolve({ code: null, signal: null, reason: `cannot run virsh: ${err.message}`, byUs: this.closedByUs, stderr: '' }));
      this.child.on('close', (code, signal) => {
        const lines = virshErrorLines(this.stderr);
        let reason = lines.join('; ');
        if (this.overflow) reason = `virsh printed a line longer than ${MAX_LINE} bytes`;
        else if (this.closedByUs) reason = 'closed by vmpm';
        else if (reason === '') reason = `virsh exited (${signal ?? `code ${code}`})`;
        resolve({ code, signal, reason, byUs: this.closedByUs, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.spawned && this.child.exitCode === null && this.child.signalCode === null;
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.closedByUs = true;
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
      await this.ended;
      clearTimeout(timer);
    }
  }
}
