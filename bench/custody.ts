/**
 * Chain-of-custody benchmark (issue 14: everything streams; a 4 GiB bundle under 256 MiB RSS). Builds
 * a synthetic 4 GiB guest bundle once (3 GiB below the PCI hole + 1 GiB above 4 GiB, every page
 * incompressible random data, so the bundle file is ~4 GiB too) and runs the real CLI on it, each
 * command in its own process under /usr/bin/time: seal, unseal, sign, verify --signer, slim, redact
 * (a 64 MiB --range and a --pattern over all 4 GiB). Alternatives measured in the same run: age -r,
 * age -d, ssh-keygen -Y sign.
 *
 * `--data P`: only P% of the 1 MiB chunks hold random data, the rest are zero (default 100: the
 * worst case for memory, every one of the 1,048,576 pages distinct).
 *
 * `--only redact,slim,...`: just those commands (seal, sign, verify, slim, redact) and their alternatives.
 *
 *   npm run build && node dist/bench/custody.js [--dir DIR] [--data P] [--clean] [--keep] [--build-only] [--only LIST]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Table from 'cli-table3';
import { arg, buildPcBundle } from './lib/pc-bundle';

const VMPM = join(__dirname, '..', '..', 'bin', 'vmpm');

const DATA_PERCENT = Number(arg('--data', '100'));

/** Chunk n holds random data when (n * 37) % 100 < P: spread evenly, the same chunks every run. */
async function* image(_start: bigint, length: bigint): AsyncGenerator<Buffer> {
  const zero = Buffer.alloc(1 << 20);
  let n = 0;
  for (let at = 0n; at < length; at += 1n << 20n) yield (n++ * 37) % 100 < DATA_PERCENT ? randomBytes(1 << 20) : zero;
}

interface Run {
  seconds: number;
  rssMiB: number;
}

/** Runs a command under /usr/bin/time; fails loudly if it fails. */
function timed(cmd: string, args: string[]): Run {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return { seconds: Number(last[0]), rssMiB: Math.round(Number(last[1]) / 1024) };
}

async function main(): Promise<void> {
  const dir = arg('--dir', join(tmpdir(), 'vmpm-bench-custody'));
  if (process.argv.includes('--clean')) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const bundle = join(dir, `guest-4g-${DATA_PERCENT}pct.vmpm`);
  if (!existsSync(bundle)) {
    process.stderr.write(`building ${bundle} (4 GiB, ${DATA_PERCENT}% random pages, once) ...\n`);
    await buildPcBundle(bundle, image);
  }
  if (process.argv.includes('--build-only')) return;
  // The machine may be shared: the load before and after says how far to trust the seconds.
  const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
  const loadBefore = load();
  const size = statSync(bundle).size;
  const key = join(dir, 'age-key.txt');
  if (!existsSync(key)) execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  const recipient = /age1[0-9a-z]+/.exec(readFileSync(key, 'utf8'))![0];
  const sshKey = join(dir, 'ssh-key');
  if (!existsSync(sshKey)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', sshKey]);
  const out = (n: string): string => {
    const p = join(dir, n);
    rmSync(p, { force: true });
    return p;
  };
  const mb = (s: number): string => `${Math.round(size / 2 ** 20 / s)} MiB/s`;
  const rows: string[][] = [];
  const add = (what: string, r: Run, note = ''): void => {
    rows.push([what, r.seconds.toFixed(1), String(r.rssMiB), note]);
    process.stderr.write(`  ${what}: ${r.seconds} s, ${r.rssMiB} MiB\n`);
  };
  const only = arg('--only', 'seal,sign,verify,slim,redact').split(',');
  const want = (step: string): boolean => only.includes(step);
  if (want('seal')) {
  const sealed = out('guest.age');
  const s1 = timed(process.execPath, [VMPM, 'seal', bundle, '-r', recipient, '-o', sealed]);
  add('vmpm seal', s1, mb(s1.seconds));
  const s2 = timed('age', ['-r', recipient, '-o', out('guest.by-age.age'), bundle]);
  add('age -r (alternative)', s2, mb(s2.seconds));
  rmSync(join(dir, 'guest.by-age.age'), { force: true });
  const u1 = timed(process.execPath, [VMPM, 'unseal', sealed, '-i', key, '-o', out('guest.unsealed.vmpm')]);
  add('vmpm unseal', u1, mb(u1.seconds));
  rmSync(join(dir, 'guest.unsealed.vmpm'), { force: true });
  const u2 = timed('age', ['-d', '-i', key, '-o', out('guest.by-age.vmpm'), sealed]);
  add('age -d (alternative)', u2, mb(u2.seconds));
  rmSync(join(dir, 'guest.by-age.vmpm'), { force: true });
  rmSync(sealed, { force: true });
  }
  if (want('sign')) {
  rmSync(`${bundle}.sig`, { force: true });
  const g1 = timed(process.execPath, [VMPM, 'sign', bundle, '--key', sshKey]);
  add('vmpm sign', g1, mb(g1.seconds));
  const g2 = timed('sh', ['-c', `ssh-keygen -Y sign -q -n vmpm -f '${sshKey}' < '${bundle}' > '${out('by-ssh-keygen.sig')}'`]);
  add('ssh-keygen -Y sign (alternative)', g2, mb(g2.seconds));
  }
  if (want('verify')) {
  if (!existsSync(`${bundle}.sig`)) execFileSync(process.execPath, [VMPM, 'sign', bundle, '--key', sshKey], { stdio: 'ignore' });
  const v1 = timed(process.execPath, [VMPM, 'verify', bundle, '--signer', `${sshKey}.pub`]);
  add('vmpm verify --signer (every digest + signature)', v1, mb(v1.seconds));
  }
  if (want('slim')) {
  const sl = timed(process.execPath, [VMPM, 'slim', bundle, '-o', out('guest.slim.vmpm')]);
  add('vmpm slim', sl, `${Math.round(statSync(join(dir, 'guest.slim.vmpm')).size / 2 ** 20)} MiB slim bundle`);
  }
  if (want('redact')) {
  const rr = timed(process.execPath, [VMPM, 'redact', bundle, '-o', out('guest.redacted.vmpm'), '--range', '0x10000000-0x14000000']);
  add('vmpm redact --range (64 MiB)', rr, 'rewrites all 4 GiB');
  const rp = timed(process.execPath, [VMPM, 'redact', bundle, '-o', out('guest.redacted.vmpm'), '--pattern', 'VMPM-SECRET-[0-9]+', '--force']);
  add('vmpm redact --pattern', rp, 'regex over all 4 GiB');
  }
  if (!process.argv.includes('--keep')) for (const p of [join(dir, 'guest.slim.vmpm'), join(dir, 'guest.redacted.vmpm'), `${bundle}.sig`]) rmSync(p, { force: true });
  const table = new Table({ head: [`command (4 GiB guest, ${DATA_PERCENT}% data, bundle ${(size / 2 ** 30).toFixed(2)} GiB)`, 'seconds', 'max RSS MiB', 'notes'], style: { head: [], border: [] } });
  table.push(...rows);
  process.stdout.write(`${table.toString()}\nload average (1/5/15 min) before: ${loadBefore}; after: ${load()}\n`);
  const over = rows.filter((r) => r[0]!.startsWith('vmpm') && Number(r[2]) >= 256);
  if (over.length) {
    process.stderr.write(`over 256 MiB RSS: ${over.map((r) => r[0]).join(', ')}\n`);
    process.exitCode = 1;
  }
}

void main();
