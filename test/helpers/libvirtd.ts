/**
 * A real libvirtd for tests, started without systemd by scripts/libvirtd-nosystemd.sh (the same setup
 * .ci/run uses). Only the daemons that script started are stopped again, by PID; a libvirtd that was
 * already running is used as it is and left alone. Domains are transient TCG domains (type='qemu')
 * destroyed by the test that created them.
 */
import { execFile } from 'node:child_process';
import { after, before } from 'node:test';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BOOT_SECTOR_IMAGE } from '../../src/guest';
import { Virsh } from '../../src/libvirt';
import { requireTools } from './requirements';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'libvirtd-nosystemd.sh');
export const TEST_URI = 'qemu:///system';

/** Skip message when libvirt (or QEMU) is missing; throws under CI=true (see requirements.ts). */
export function requireLibvirt(): false | string {
  const tools = requireTools('qemu-system-x86_64', 'virsh');
  if (tools) return tools;
  // The daemons live in /usr/sbin, which a test runner's PATH may lack; the script starts them from there.
  const missing = ['/usr/sbin/libvirtd', '/usr/sbin/virtlogd'].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    const message = `needs ${missing.join(', ')} (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)`;
    if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
    return message;
  }
  if (process.getuid?.() !== 0) {
    const message = 'needs root to start libvirtd (qemu:///system)';
    if (process.env.CI === 'true') throw new Error(`CI=true but ${message}`);
    return message;
  }
  return false;
}

export interface LibvirtHost {
  uri: string;
  virsh: Virsh;
  /** Daemons this fixture started (and will stop). */
  started: Array<{ name: string; pid: number }>;
  /** PID of the libvirtd serving the tests now (from /run/libvirtd.pid). */
  libvirtdPid(): number;
  stop(): Promise<void>;
}

/**
 * For a test file's top level: skips when libvirt is missing (requireLibvirt), else starts libvirtd
 * and makes a temp dir named `tmpPrefix`XXXXXX in before(), and removes the dir and stops libvirtd in
 * after(). `host` and `dir` are there once before() ran, i.e. inside tests.
 */
export function useLibvirtd(tmpPrefix: string): { readonly skip: false | string; readonly host: LibvirtHost; readonly dir: string } {
  const skip = requireLibvirt();
  let host: LibvirtHost | undefined;
  let dir: string | undefined;
  before(async () => {
    if (skip) return;
    host = await startLibvirtd();
    dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  });
  after(async () => {
    if (skip) return;
    if (dir) rmSync(dir, { recursive: true, force: true });
    await host?.stop();
  });
  const ready = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useLibvirtd: ${what} is set in before() (${skip || 'libvirtd not started yet'})`);
    return v;
  };
  return {
    skip,
    get host() {
      return ready(host, 'host');
    },
    get dir() {
      return ready(dir, 'dir');
    },
  };
}

/**
 * Test files may run in parallel: each registers itself under USERS before starting, and the last
 * one to finish stops the daemons any of them started (recorded in STARTED), so no file stops a
 * libvirtd another file is still using.
 */
const USERS = '/run/vmpm-test-libvirtd';
const STARTED = join(USERS, 'started');

export async function startLibvirtd(): Promise<LibvirtHost> {
  mkdirSync(USERS, { recursive: true });
  const me = join(USERS, `user-${process.pid}`);
  writeFileSync(me, '');
  const { stdout } = await run(SCRIPT, ['start'], { timeout: 60_000 });
  const started = [...stdout.matchAll(/^started (\S+) (\d+)$/gm)].map((m) => ({ name: m[1]!, pid: Number(m[2]) }));
  for (const d of started) appendFileSync(STARTED, `${d.name} ${d.pid}\n`);
  return {
    uri: TEST_URI,
    virsh: new Virsh({ uri: TEST_URI }),
    started,
    libvirtdPid: () => Number(readFileSync('/run/libvirtd.pid', 'utf8').trim()),
    stop: async () => {
      rmSync(me, { force: true });
      const others = readdirSync(USERS).filter((n) => n.startsWith('user-') && alive(Number(n.slice(5))));
      if (others.length > 0) return;
      const all = existsSync(STARTED) ? readFileSync(STARTED, 'utf8') : '';
      rmSync(STARTED, { force: true });
      // libvirtd first (it talks to virtlogd), newest first; only processes that still are those daemons.
      const daemons = [...all.matchAll(/^(\S+) (\d+)$/gm)].map((m) => ({ name: m[1]!, pid: Number(m[2]) })).reverse();
      for (const d of daemons) if (commOf(d.pid) === d.name) await stopPid(d.pid);
    },
  };
}

/** libvirtd -d forks: it is not our child, so poll for its end. */
async function stopPid(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    if (!alive(pid)) return;
  }
  process.kill(pid, 'SIGKILL');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export interface TestDomain {
  name: string;
  uuid: string;
  dir: string;
  destroy(): Promise<void>;
}

let counter = 0;

/** A unique domain name per test run, so a leftover from a killed run never collides. */
export function domainName(tag: string): string {
  counter += 1;
  return `vmpm-${tag}-${process.pid}-${counter}`;
}

/**
 * The known-answer boot sector (assets/guests/boot.asm) as a transient libvirt domain, created paused:
 * <panic model='isa'/> (QEMU's pvpanic at 0x505), <vmcoreinfo state='on'/>, <on_crash>preserve</on_crash>.
 */
export async function createBootSectorDomain(
  host: LibvirtHost,
  options: { name?: string; uuid?: string; memoryMiB?: number; extraQmp?: boolean; /** An all-zero disk: SeaBIOS finds nothing to boot and the guest keeps running. */ blank?: boolean } = {},
): Promise<TestDomain & { qmpPath?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-libvirt-'));
  const disk = join(dir, 'boot.img');
  if (options.blank) writeFileSync(disk, '');
  else copyFileSync(BOOT_SECTOR_IMAGE, disk);
  truncateSync(disk, 1024 * 1024);
  const name = options.name ?? domainName('ka');
  const uuid = options.uuid ?? randomUuid();
  // The way sites bolt a second monitor onto a libvirt domain (flagged "tainted: custom-argv").
  const qmpPath = options.extraQmp ? join(dir, 'extra-qmp.sock') : undefined;
  const commandline = qmpPath ? `\n  <qemu:commandline><qemu:arg value='-qmp'/><qemu:arg value='unix:${qmpPath},server=on,wait=off'/></qemu:commandline>` : '';
  const xml = domainXml({ name, uuid, memoryMiB: options.memoryMiB ?? 64, disk, commandline });
  const d = await createDomain(host, { name, uuid, dir, xml });
  return qmpPath ? { ...d, qmpPath } : d;
}

export async function createDomain(host: LibvirtHost, d: { name: string; uuid: string; dir: string; xml: string; paused?: boolean }): Promise<TestDomain> {
  const file = join(d.dir, 'domain.xml');
  writeFileSync(file, d.xml);
  try {
    await host.virsh.run(['create', file, ...(d.paused === false ? [] : ['--paused'])]);
  } catch (err) {
    rmSync(d.dir, { recursive: true, force: true });
    throw err;
  }
  return {
    name: d.name,
    uuid: d.uuid,
    dir: d.dir,
    destroy: async () => {
      await host.virsh.raw(['destroy', d.name]).catch(() => undefined);
      rmSync(d.dir, { recursive: true, force: true });
    },
  };
}

export function domainXml(o: { name: string; uuid: string; memoryMiB: number; disk: string; extraDevices?: string; os?: string; commandline?: string }): string {
  return `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>${o.name}</name>
  <uuid>${o.uuid}</uuid>
  <memory unit='MiB'>${o.memoryMiB}</memory>
  <vcpu>1</vcpu>
  ${o.os ?? "<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>"}
  <features><vmcoreinfo state='on'/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' error_policy='stop'/>
      <source file='${o.disk}'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <panic model='isa'><address type='isa' iobase='0x505'/></panic>
    <memballoon model='none'/>${o.extraDevices ?? ''}
  </devices>${o.commandline ?? ''}
</domain>
`;
}

function randomUuid(): string {
  return crypto.randomUUID();
}

/** `virsh domstate NAME` as printed ("paused"); with `reason`, `--reason` ("crashed (panicked)"). */
export async function domState(host: LibvirtHost, name: string, options: { reason?: boolean } = {}): Promise<string> {
  return (await host.virsh.raw(['domstate', name, ...(options.reason ? ['--reason'] : [])])).stdout.trim();
}

/** Polls `virsh domstate --reason` until it reads `want` (e.g. "crashed (panicked)"). */
export async function waitForDomState(host: LibvirtHost, name: string, want: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await domState(host, name, { reason: true });
    if (last === want) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`domain ${name} did not reach "${want}" within ${timeoutMs} ms (last: "${last}")`);
}
