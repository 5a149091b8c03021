/**
 * Builds an arm64 Linux test guest from Debian's packages without touching the machine's dpkg
 * configuration: a private apt state (its own lists, cache and an empty status file, architecture
 * arm64) fetches `linux-image-arm64`'s current kernel and `busybox-static:arm64`. The initramfs is the
 * x86 guest's: the same /init (assets/guests/linux/init), the arm64 busybox and qemu_fw_cfg.ko (so
 * `-device vmcoreinfo` gets the kernel's VMCOREINFO). Debian's arm64 6.1 has no pvpanic driver: a
 * panic with `panic=-1 -no-reboot -no-shutdown` arrives as SHUTDOWN (guest-reset) with RAM intact.
 * Everything is cached in $VMPM_GUEST_CACHE (or the temp dir). By hand: `node dist/test/linux/build-guest-arm64.js`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeCpioNewc, type CpioEntry } from './cpio';
import { INIT_SCRIPT, dpkgExtract, listFiles } from './build-guest';

const APPLETS = ['sh', 'mount', 'insmod', 'cat', 'echo', 'poweroff'];

export interface Arm64Guest {
  dir: string;
  /** e.g. "6.1.0-57-arm64" */
  release: string;
  /** The uncompressed arm64 Image for -kernel (its first byte is _text). */
  kernel: string;
  initrd: string;
  reused: boolean;
  totalMs: number;
}

export function arm64CacheDir(): string {
  return join(process.env.VMPM_GUEST_CACHE || tmpdir(), 'vmpm-linux-guest-arm64');
}

export async function buildArm64Guest(log: (line: string) => void = () => undefined): Promise<Arm64Guest> {
  const started = performance.now();
  const dir = arm64CacheDir();
  const done = join(dir, 'guest.json');
  if (existsSync(done)) {
    const g = JSON.parse(readFileSync(done, 'utf8')) as Arm64Guest;
    if ([g.kernel, g.initrd].every((f) => existsSync(f))) return { ...g, reused: true, totalMs: Math.round(performance.now() - started) };
  }
  const apt = join(dir, 'apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'debs']) mkdirSync(join(apt, d), { recursive: true });
  if (!existsSync(join(apt, 'status'))) writeFileSync(join(apt, 'status'), '');
  const options = [
    '-o', `Dir::State::Lists=${join(apt, 'lists')}`,
    '-o', `Dir::Cache=${join(apt, 'cache')}`,
    '-o', `Dir::State::status=${join(apt, 'status')}`,
    '-o', 'APT::Architectures::=arm64',
    '-o', 'APT::Architecture=arm64',
  ];
  log('build-guest-arm64: apt-get update (private arm64 lists)...');
  await run('apt-get', [...options, 'update', '-q']);
  const depends = await run('apt-cache', [...options, 'depends', 'linux-image-arm64']);
  const m = /^\s*Depends:\s*(linux-image-(\d[^\s]*-arm64))\s*$/m.exec(depends);
  if (!m) throw new Error(`apt-cache depends linux-image-arm64 names no kernel package:\n${depends}`);
  const [pkg, release] = [m[1]!, m[2]!];
  const debs = join(apt, 'debs');
  log(`build-guest-arm64: apt-get download ${pkg} busybox-static:arm64...`);
  await run('apt-get', [...options, 'download', '-q', pkg, 'busybox-static:arm64'], debs);
  const deb = (prefix: string) => {
    const f = readdirSync(debs).find((n) => n.startsWith(prefix) && n.endsWith('_arm64.deb'));
    if (f === undefined) throw new Error(`no ${prefix}*_arm64.deb in ${debs}`);
    return join(debs, f);
  };
  const tree = join(dir, 'extract.tmp');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  await dpkgExtract(deb(`${pkg}_`), tree, ['*/boot/vmlinuz-*', '*/qemu_fw_cfg.ko']);
  await dpkgExtract(deb('busybox-static_'), tree, ['*/bin/busybox']);
  const files = listFiles(tree);
  const find = (re: RegExp) => {
    const f = files.find((x) => re.test(x));
    if (f === undefined) throw new Error(`the arm64 packages hold no file matching ${re}`);
    return f;
  };
  // Debian's arm64 vmlinuz is a plain Image, or gzip'd on some releases: QEMU takes either, but the
  // tests compare memory with the Image's bytes, so keep it uncompressed.
  let image = readFileSync(find(/\/boot\/vmlinuz-[^/]+$/));
  if (image[0] === 0x1f && image[1] === 0x8b) image = gunzipSync(image);
  const kernel = join(dir, 'Image');
  writeFileSync(kernel, image);
  const busybox = readFileSync(find(/\/bin\/busybox$/));
  const fwcfg = readFileSync(find(/\/qemu_fw_cfg\.ko$/));
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'modules'].map((path): CpioEntry => ({ kind: 'dir', path })),
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    ...APPLETS.map((a): CpioEntry => ({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { kind: 'file', path: 'modules/qemu_fw_cfg.ko', data: fwcfg },
    { kind: 'file', path: 'init', data: readFileSync(INIT_SCRIPT), mode: 0o755 },
  ];
  const initrd = join(dir, 'initramfs.cpio.gz');
  writeFileSync(initrd, gzipSync(writeCpioNewc(entries)));
  rmSync(tree, { recursive: true, force: true });
  const guest: Arm64Guest = { dir, release, kernel, initrd, reused: false, totalMs: Math.round(performance.now() - started) };
  writeFileSync(`${done}.tmp`, JSON.stringify(guest));
  renameSync(`${done}.tmp`, done);
  return guest;
}

function run(command: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.slice(-3).join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

if (require.main === module) {
  buildArm64Guest((l) => process.stderr.write(`${l}\n`)).then(
    (g) => process.stdout.write(`${JSON.stringify(g, null, 2)}\n`),
    (err: Error) => {
      process.stderr.write(`build-guest-arm64: ${err.message}\n`);
      process.exit(1);
    },
  );
}
