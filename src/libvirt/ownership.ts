/**
 * Is the QEMU behind a plain QMP endpoint run by libvirt? Then vmpm must not send it
 * `dump-guest-memory`: libvirtd 9.0 segfaulted in 3 of 5 such captures, handling the DUMP_COMPLETED
 * of a dump it had not started (qemuProcessHandleDumpCompleted). Memory then goes through pmemsave.
 *
 * How (Linux /proc, no privileges beyond seeing the process): the endpoint's listening socket is
 * found in /proc/net/unix (by path) or /proc/net/tcp{,6} (by port), its inode matched to the process
 * holding it (/proc/PID/fd -> socket:[inode]); that process's command line is then checked for what
 * libvirt always puts there: `-name guest=NAME,...` together with a path under libvirt's state
 * directories (/var/lib/libvirt/qemu/domain-N-NAME/ for the master key, /run/libvirt/ ...), or the
 * PID in libvirt's pid file for that name. When the owner cannot be seen (another user's QEMU without
 * root), the answer is "unknown", and callers say so.
 */
import { readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Endpoint } from '../qmp';

export interface QemuOwner {
  pid: number;
  /** The process's argv. */
  argv: string[];
  /** The `-name guest=...` value, when present. */
  guestName: string | null;
  /** Why vmpm believes libvirt runs it; null when it does not. */
  libvirt: { domain: string | null; evidence: string } | null;
}

export type OwnerLookup = { found: true; owner: QemuOwner } | { found: false; why: string };

export function qemuBehindEndpoint(endpoint: Endpoint, proc = '/proc'): OwnerLookup {
  const inodes = endpoint.kind === 'unix' ? unixListenInodes(endpoint.path, proc) : tcpListenInodes(endpoint.port, proc);
  if (inodes.size === 0) return { found: false, why: 'no listening socket for it in /proc/net' };
  const pid = pidHolding(inodes, proc);
  if (pid === undefined) return { found: false, why: 'the process holding the socket is not visible (run as root to check)' };
  const argv = readArgv(pid, proc);
  return { found: true, owner: { pid, argv, guestName: guestNameOf(argv), libvirt: libvirtEvidence(pid, argv) } };
}

/** Inodes of listening unix sockets bound to `path` (compared after resolving symlinks in the directory). */
function unixListenInodes(path: string, proc: string): Set<string> {
  const want = new Set([path, resolve(path), resolveQuietly(path)]);
  const out = new Set<string>();
  for (const line of readLines(`${proc}/net/unix`).slice(1)) {
    const f = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON (listening)
    if (f.length < 8 || f[3] !== '00010000') continue;
    const p = f.slice(7).join(' ');
    if (want.has(p)) out.add(f[6]!);
  }
  return out;
}

function tcpListenInodes(port: number, proc: string): Set<string> {
  const out = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['tcp', 'tcp6']) {
    for (const line of readLines(`${proc}/net/${file}`).slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... uid timeout inode; st 0A = LISTEN
      if (f.length < 10 || f[3] !== '0A') continue;
      if (f[1]!.split(':')[1] === hexPort) out.add(f[9]!);
    }
  }
  return out;
}

function pidHolding(inodes: Set<string>, proc: string): number | undefined {
  const targets = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const name of safeReaddir(proc)) {
    if (!/^\d+$/.test(name)) continue;
    for (const fd of safeReaddir(`${proc}/${name}/fd`)) {
      let link: string;
      try {
        link = readlinkSync(`${proc}/${name}/fd/${fd}`);
      } catch {
        continue;
      }
      if (targets.has(link)) return Number(name);
    }
  }
  return undefined;
}

function readArgv(pid: number, proc: string): string[] {
  try {
    return readFileSync(`${proc}/${pid}/cmdline`, 'utf8').split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return [];
  }
}

/** `-name guest=vm1,debug-threads=on` -> vm1; `-name vm1` -> vm1 (QEMU's commas are doubled inside values). */
export function guestNameOf(argv: string[]): string | null {
  const i = argv.indexOf('-name');
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (v === undefined) return null;
  const parts = v.split(/(?<!,),(?!,)/);
  const guest = parts.find((p) => p.startsWith('guest='));
  const name = guest !== undefined ? guest.slice(6) : parts[0]!.includes('=') ? null : parts[0]!;
  return name === null ? null : name.replace(/,,/g, ',');
}

/** libvirt's marks on a QEMU it started; null when there are none. */
export function libvirtEvidence(pid: number, argv: string[]): QemuOwner['libvirt'] {
  const name = guestNameOf(argv);
  const hasGuestName = argv.some((a, i) => argv[i - 1] === '-name' && /(^|,)guest=/.test(a));
  const joined = argv.join(' ');
  const statePath = /\/var\/lib\/libvirt\/qemu\/domain-\d+-|\/run\/libvirt\/qemu\/|\/libvirt\/qemu\/(?:lib|run)\/domain-\d+-/.exec(joined);
  if (hasGuestName && statePath) return { domain: name, evidence: `its command line has -name guest=${name} and libvirt's state path ${statePath[0]}...` };
  if (name !== null) {
    for (const pidfile of [`/run/libvirt/qemu/${name}.pid`, `${process.env.XDG_RUNTIME_DIR ?? '/nonexistent'}/libvirt/qemu/run/${name}.pid`]) {
      try {
        if (readFileSync(pidfile, 'utf8').trim() === String(pid)) return { domain: name, evidence: `libvirt's pid file ${pidfile} names it` };
      } catch {
        // no such pid file
      }
    }
  }
  if (hasGuestName && /(^|,)id=charmonitor(,|$)/.test(joined)) return { domain: name, evidence: `its command line has -name guest=${name} and libvirt's monitor chardev "charmonitor"` };
  return null;
}

function readLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function resolveQuietly(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
