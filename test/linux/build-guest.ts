/**
 * Builds vmpm's real-Linux test guest from Debian packages: the distribution kernel (preferably as
 * the uncompressed PVH `vmlinux`, which QEMU boots about twice as fast as the bzImage and without
 * KASLR) and a gzip'd cpio initramfs with a static busybox, the pvpanic and fw_cfg modules and
 * `assets/guests/linux/init`. Everything lands in a cache directory and is reused when present.
 *
 * Needs apt package lists (for `apt-cache`/`apt-get download`, which work without installing
 * anything), `dpkg-deb`, `tar` and `xz`. Run `node dist/test/linux/build-guest.js` to build by hand.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeCpioNewc, type CpioEntry } from './cpio';

export const INIT_SCRIPT = join(__dirname, '..', '..', '..', 'assets', 'guests', 'linux', 'init');

/** Modules the /init loads, in load order (pvpanic-mmio needs pvpanic). */
const MODULES = ['pvpanic', 'pvpanic-mmio', 'qemu_fw_cfg'];
/** busybox applets /init calls by name (symlinks in /bin). */
const APPLETS = ['sh', 'mount', 'insmod', 'cat', 'echo', 'poweroff', 'sleep'];
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export interface KernelPackage {
  /** e.g. "linux-image-6.1.0-57-amd64" */
  name: string;
  /** `uname -r` of that kernel, e.g. "6.1.0-57-amd64" (the OSRELEASE in its VMCOREINFO). */
  release: string;
}

export interface LinuxGuest {
  dir: string;
  kernelPackage: KernelPackage;
  /** The file for QEMU's -kernel. */
  kernel: string;
  /** The packaged bzImage (vmlinuz): booted through SeaBIOS with KASLR, unlike the PVH vmlinux. */
  bzImage: string;
  /** 'pvh-vmlinux': uncompressed ELF booted through PVH (fixed addresses); 'bzImage': the packaged vmlinuz. */
  kernelFormat: 'pvh-vmlinux' | 'bzImage';
  /** The file for QEMU's -initrd. */
  initrd: string;
}

export interface BuildResult extends LinuxGuest {
  /** True when nothing had to be built (warm cache). */
  reused: boolean;
  totalMs: number;
  steps: Array<{ step: string; ms: number }>;
}

/**
 * The package `linux-image-amd64` currently depends on, from the local apt lists; undefined when
 * apt knows no such package (lists never downloaded: `apt-get update` fixes that). Synchronous,
 * so a test file can decide whether to skip while it is being defined.
 */
export function findKernelPackage(): KernelPackage | undefined {
  const out = aptCache(['depends', 'linux-image-amd64']);
  const match = out === undefined ? null : /^\s*Depends:\s*(linux-image-(\d[^\s]*-amd64))\s*$/m.exec(out);
  return match ? { name: match[1]!, release: match[2]! } : undefined;
}

function aptCache(args: string[]): string | undefined {
  try {
    return execFileSync('apt-cache', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, LC_ALL: 'C' } });
  } catch {
    return undefined; // no apt at all, or "E: No packages found"
  }
}

/**
 * For a test's `skip` option: false when the guest can be built, else why not. Under CI=true a
 * missing prerequisite throws, because CI is expected to provide it.
 */
export function guestBuildSkipReason(): false | string {
  if (findKernelPackage() !== undefined && aptCache(['show', '--no-all-versions', 'busybox-static']) !== undefined) return false;
  const message = 'apt-cache finds no linux-image-amd64 or busybox-static package: run `apt-get update` (package lists) to build the Linux test guest';
  if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
  return message;
}

/** Where the guest for `release` is cached: $VMPM_GUEST_CACHE (if set) or the temp dir, one subdirectory per kernel. */
export function guestCacheDir(release: string): string {
  return join(process.env.VMPM_GUEST_CACHE || tmpdir(), `vmpm-linux-guest-${release}`);
}

export async function buildLinuxGuest(options: { cacheDir?: string; log?: (line: string) => void } = {}): Promise<BuildResult> {
  const started = performance.now();
  const steps: BuildResult['steps'] = [];
  const log = options.log ?? (() => undefined);
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    log(`build-guest: ${name}...`);
    const result = await fn();
    steps.push({ step: name, ms: Math.round(performance.now() - t) });
    return result;
  };

  const kernelPackage = findKernelPackage();
  if (kernelPackage === undefined) throw new Error('apt-cache knows no linux-image-amd64 package: run `apt-get update`');
  const dir = options.cacheDir ?? guestCacheDir(kernelPackage.release);
  const debs = join(dir, 'debs');
  const modulesDir = join(dir, 'modules');
  mkdirSync(debs, { recursive: true });

  const vmlinux = join(dir, 'vmlinux');
  const vmlinuz = join(dir, 'vmlinuz');
  const busybox = join(dir, 'busybox');
  const haveKernel = existsSync(vmlinuz) && MODULES.every((m) => existsSync(join(modulesDir, `${m}.ko`)));
  let reused = true;

  if (!haveKernel || !existsSync(busybox)) {
    reused = false;
    const wanted = [kernelPackage.name, 'busybox-static'].filter((p) => findDeb(debs, p) === undefined);
    if (wanted.length > 0) await step(`apt-get download ${wanted.join(' ')}`, () => run('apt-get', ['download', '-q', ...wanted], { cwd: debs }));
  }
  if (!haveKernel) {
    await step('extract vmlinuz and modules', () => extractKernel(dir, findDeb(debs, kernelPackage.name)!, modulesDir));
  }
  if (!existsSync(busybox)) {
    await step('extract busybox', () => extractBusybox(dir, findDeb(debs, 'busybox-static')!));
  }
  if (!existsSync(vmlinux) && !existsSync(join(dir, 'no-pvh-vmlinux'))) {
    reused = false;
    await step('unpack the PVH vmlinux from vmlinuz (xz)', () => extractVmlinux(vmlinuz, vmlinux, dir));
  }

  // Named after the digest of its inputs: editing /init rebuilds only the initramfs.
  const inputs = [readFileSync(INIT_SCRIPT), readFileSync(busybox), ...MODULES.map((m) => readFileSync(join(modulesDir, `${m}.ko`)))];
  const digest = createHash('sha256');
  for (const b of inputs) digest.update(createHash('sha256').update(b).digest());
  digest.update(APPLETS.join(','));
  const initrd = join(dir, `initramfs-${digest.digest('hex').slice(0, 12)}.cpio.gz`);
  if (!existsSync(initrd)) {
    reused = false;
    await step('write initramfs (cpio newc + gzip)', async () => writeAtomic(initrd, gzipSync(initramfsArchive(modulesDir, busybox))));
    for (const stale of readdirSync(dir).filter((f) => /^initramfs-[0-9a-f]+\.cpio\.gz$/.test(f) && join(dir, f) !== initrd)) rmSync(join(dir, stale), { force: true });
  }

  const pvh = existsSync(vmlinux);
  return {
    dir,
    kernelPackage,
    kernel: pvh ? vmlinux : vmlinuz,
    bzImage: vmlinuz,
    kernelFormat: pvh ? 'pvh-vmlinux' : 'bzImage',
    initrd,
    reused,
    totalMs: Math.round(performance.now() - started),
    steps,
  };
}

function initramfsArchive(modulesDir: string, busybox: string): Buffer {
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'modules'].map((path): CpioEntry => ({ kind: 'dir', path })),
    // The kernel opens /dev/console for init's stdin/stdout before /init can mount devtmpfs.
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    ...APPLETS.map((a): CpioEntry => ({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    ...MODULES.map((m): CpioEntry => ({ kind: 'file', path: `modules/${m}.ko`, data: readFileSync(join(modulesDir, `${m}.ko`)) })),
    { kind: 'file', path: 'init', data: readFileSync(INIT_SCRIPT), mode: 0o755 },
  ];
  return writeCpioNewc(entries);
}

/** The downloaded .deb of `pkg` in `debs` (apt-get download names it PKG_VERSION_ARCH.deb). */
function findDeb(debs: string, pkg: string): string | undefined {
  const name = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  return name === undefined ? undefined : join(debs, name);
}

/** Only the files needed come out of the 70 MB package: `dpkg-deb --fsys-tarfile | tar --wildcards`. */
async function extractKernel(dir: string, deb: string, modulesDir: string): Promise<void> {
  const tree = join(dir, 'extract-kernel.tmp');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  await dpkgExtract(deb, tree, ['*/boot/vmlinuz-*', ...MODULES.map((m) => `*/${m}.ko`)]);
  const files = listFiles(tree);
  mkdirSync(modulesDir, { recursive: true });
  for (const m of MODULES) {
    const found = files.find((f) => f.endsWith(`/${m}.ko`));
    if (found === undefined) throw new Error(`${deb} has no ${m}.ko (compressed modules are not supported by this builder)`);
    renameSync(found, join(modulesDir, `${m}.ko`));
  }
  const kernel = files.find((f) => /\/boot\/vmlinuz-[^/]+$/.test(f));
  if (kernel === undefined) throw new Error(`${deb} has no /boot/vmlinuz-*`);
  renameSync(kernel, join(dir, 'vmlinuz'));
  rmSync(tree, { recursive: true, force: true });
}

async function extractBusybox(dir: string, deb: string): Promise<void> {
  const tree = join(dir, 'extract-busybox.tmp');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  await dpkgExtract(deb, tree, ['*/bin/busybox']);
  const found = listFiles(tree).find((f) => f.endsWith('/bin/busybox'));
  if (found === undefined) throw new Error(`${deb} has no /bin/busybox`);
  renameSync(found, join(dir, 'busybox'));
  rmSync(tree, { recursive: true, force: true });
}

/**
 * vmlinuz is a bzImage whose payload is an xz stream (x86 BCJ filter, which busybox's xzcat cannot
 * undo, so the host xz is used). `--single-stream` ignores what follows the stream. Some bytes of
 * the setup code may look like the xz magic, so each candidate is tried until one yields an ELF.
 * Without a usable vmlinux the bzImage is booted instead (slower, KASLR), and a marker file
 * records that so the cache is not re-examined on every run.
 */
async function extractVmlinux(vmlinuz: string, vmlinux: string, dir: string): Promise<void> {
  const image = readFileSync(vmlinuz);
  const payload = join(dir, 'payload.xz.tmp');
  const partial = `${vmlinux}.tmp`;
  let failures = '';
  try {
    for (let at = image.indexOf(XZ_MAGIC); at >= 0; at = image.indexOf(XZ_MAGIC, at + 1)) {
      writeFileSync(payload, image.subarray(at));
      try {
        await runToFile('xz', ['-dc', '--single-stream', payload], partial);
      } catch (err) {
        failures += ` @${at}: ${(err as Error).message.split('\n')[0]}`;
        continue;
      }
      const head = readFileSync(partial).subarray(0, 4);
      if (head.equals(ELF_MAGIC)) {
        renameSync(partial, vmlinux);
        return;
      }
    }
  } finally {
    rmSync(payload, { force: true });
    rmSync(partial, { force: true });
  }
  writeFileSync(join(dir, 'no-pvh-vmlinux'), `no xz payload in ${vmlinuz} gave an ELF vmlinux:${failures}\n`);
}

/** Extracts the files matching `patterns` (tar wildcards) from a .deb into `dest`: shared by the x86-64 and arm64 guest builds. */
export function dpkgExtract(deb: string, dest: string, patterns: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dest, '--wildcards', ...patterns], { stdio: ['pipe', 'ignore', 'pipe'] });
    dpkg.stdout.pipe(tar.stdin);
    // tar may stop reading early on error; the broken pipe is reported through tar's exit code.
    tar.stdin.on('error', () => undefined);
    let errors = '';
    dpkg.stderr.setEncoding('utf8').on('data', (d: string) => (errors += d));
    tar.stderr.setEncoding('utf8').on('data', (d: string) => (errors += d));
    const exit = (p: ReturnType<typeof spawn>) => new Promise<number | null>((r) => p.on('close', r).on('error', () => r(-1)));
    Promise.all([exit(dpkg), exit(tar)]).then(([a, b]) => {
      if (a === 0 && b === 0) resolve();
      else reject(new Error(`dpkg-deb --fsys-tarfile ${deb} | tar -x ${patterns.join(' ')} failed (${a}/${b}): ${errors.trim()}`));
    }, reject);
  });
}

/** Every file below `root`, recursively. */
export function listFiles(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

function writeAtomic(path: string, data: Buffer): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

function runToFile(command: string, args: string[], outFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fd = openSync(outFile, 'w');
    const child = spawn(command, args, { stdio: ['ignore', fd, 'pipe'] });
    closeSync(fd); // the child has its own copy
    let errors = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (errors += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code}: ${errors.trim()}`));
    });
  });
}

if (require.main === module) {
  buildLinuxGuest({ log: (line) => process.stderr.write(`${line}\n`) }).then(
    (guest) => process.stdout.write(`${JSON.stringify(guest, null, 2)}\n`),
    (err: Error) => {
      process.stderr.write(`build-guest: ${err.message}\n`);
      process.exit(1);
    },
  );
}
