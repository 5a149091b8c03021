/**
 * Runs `virsh`, libvirt's own client, and keeps every call and its reply. vmpm talks to libvirt the
 * way its users do (README "Why virsh"): the client is on every libvirt host, speaks every transport
 * libvirt supports (local socket, ssh, tls), authenticates the way the site configured, and its
 * commands are the ones an operator would type to repeat what vmpm did.
 *
 * Every call is bounded (timeout, output size), never goes through a shell, and is recorded into the
 * transcript as two lines, as QMP exchanges are: `tx` the command line, `rx` its output and exit code.
 */
import { spawn } from 'node:child_process';
import { VmpmError } from '../util/errors';
import { virshFailure } from './errors';

export interface VirshExchange {
  at: string;
  dir: 'tx' | 'rx';
  line: string;
}

export interface VirshResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface VirshOptions {
  /** libvirt connection URI (virsh -c). Default: virsh's own default (LIBVIRT_DEFAULT_URI, then qemu:///system for root). */
  uri?: string;
  /** The virsh binary (default `virsh` on PATH, or VMPM_VIRSH). */
  binary?: string;
  /** Per-call timeout (default 30 s). */
  timeoutMs?: number;
  /** Called with every exchange line (the transcript). */
  record?: (e: VirshExchange) => void;
}

/** Longest stdout/stderr kept from one call (info mtree of a big guest is ~100 KB; query-qmp-schema is not asked). */
const MAX_OUTPUT = 16 * 1024 * 1024;

export class Virsh {
  readonly uri: string | undefined;
  readonly binary: string;
  private readonly timeoutMs: number;
  private readonly record: ((e: VirshExchange) => void) | undefined;

  constructor(options: VirshOptions = {}) {
    this.uri = options.uri;
    this.binary = options.binary ?? process.env.VMPM_VIRSH ?? 'virsh';
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.record = options.record;
  }

  /** The full argument vector for `args` (with -c URI and --quiet-free defaults). */
  argv(args: string[]): string[] {
    return this.uri === undefined ? [...args] : ['-c', this.uri, ...args];
  }

  /** The command line as an operator would type it (shell-quoted), for transcripts and messages. */
  commandLine(args: string[]): string {
    return [this.binary, ...this.argv(args)].map(shellQuote).join(' ');
  }

  /** Runs one virsh command; resolves with its output whatever the exit code. */
  async raw(args: string[], options: { timeoutMs?: number } = {}): Promise<VirshResult> {
    const line = this.commandLine(args);
    this.record?.({ at: new Date().toISOString(), dir: 'tx', line });
    const result = await runBounded(this.binary, this.argv(args), options.timeoutMs ?? this.timeoutMs);
    this.record?.({ at: new Date().toISOString(), dir: 'rx', line: describeResult(result) });
    return result;
  }

  /** Runs one virsh command; a non-zero exit throws a one-line VmpmError saying what went wrong. */
  async run(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.raw(args, options);
    if (r.code !== 0) throw virshFailure(this.commandLine(args), r, this.uri);
    return r.stdout;
  }
}

/** How one call's reply is kept in the transcript: stdout verbatim, then stderr and the exit code when they matter. */
function describeResult(r: VirshResult): string {
  const out = r.stdout.replace(/\n+$/, '');
  const parts = [out];
  if (r.stderr.trim() !== '') parts.push(`[stderr] ${r.stderr.trim()}`);
  if (r.code !== 0) parts.push(`[exit ${r.code}]`);
  return parts.filter((p) => p !== '').join('\n');
}

function runBounded(binary: string, argv: string[], timeoutMs: number): Promise<VirshResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let overflow = false;
    let timedOut = false;
    const take = (into: Buffer[], chunk: Buffer, size: number): number => {
      if (size + chunk.length > MAX_OUTPUT) {
        overflow = true;
        child.kill('SIGKILL');
        return size;
      }
      into.push(chunk);
      return size + chunk.length;
    };
    child.stdout.on('data', (c: Buffer) => (outBytes = take(out, c, outBytes)));
    child.stderr.on('data', (c: Buffer) => (errBytes = take(err, c, errBytes)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') reject(new VmpmError(`${binary} not found: install libvirt's client (apt-get install libvirt-clients)`, { cause: e }));
      else reject(new VmpmError(`cannot run ${binary}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const cmd = [binary, ...argv].map(shellQuote).join(' ');
      if (timedOut) reject(new VmpmError(`${cmd} did not finish within ${timeoutMs} ms`));
      else if (overflow) reject(new VmpmError(`${cmd} wrote more than ${MAX_OUTPUT} bytes; stopped`));
      else resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? (signal ? 128 : 1) });
    });
  });
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
