/**
 * One real Linux guest per scenario, booted, crashed the way the scenario says and captured with
 * `vmpm capture`, shared by every assertion of a test file (a boot costs 4-11 s of TCG; the suite's
 * Linux budget is minutes). The bundle, the serial log and the run's unique id come back.
 *
 * Captured by `vmpm watch` (GUEST_PANICKED), as in production. Triggers: `sysrq` (/init writes c to /proc/sysrq-trigger), `nmi` (/init sets unknown_nmi_panic, the
 * host sends QMP inject-nmi), `mce` (the host sends HMP `mce` with an uncorrected, processor-context-
 * corrupt bank-1 status). Run by hand: `node dist/test/linux/scenario.js sysrq|nmi|mce OUT.vmpm
 * [--bzimage] [--no-vmcoreinfo] [--memory 5G]` keeps a bundle for exploring.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchQemu, type LaunchedQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';
import type { IncidentNotification } from '../../src/watch/notify';
import { runCli } from '../helpers/cli';
import { extraQmp, startWatch } from '../watch/helpers';
import { buildLinuxGuest, type BuildResult } from './build-guest';

/** TCG boots this guest in 3-11 s on a shared 2-core machine (bzImage: up to 12 s); 3x headroom. */
const READY_TIMEOUT_MS = 60_000;
const PANIC_TIMEOUT_MS = 30_000;

/** The machine check the mce scenario injects: bank 1, MCi_STATUS VAL|UC|EN|PCC, MCA code 0x175. */
export const MCE_BANK = 1;
export const MCE_STATUS = 0xb200000000000175n;
export const MCE_ADDR = 0x1234000n;
export const MCE_MISC = 0x8cn;
/** MCG_STATUS RIPV|MCIP: the interrupted instruction pointer is valid, a machine check is in progress. */
const MCE_MCG_STATUS = 0x5n;

export type Trigger = 'sysrq' | 'nmi' | 'mce';

export interface ScenarioOptions {
  trigger: Trigger;
  /** 'pvh': the uncompressed vmlinux (no KASLR); 'bzImage': the packaged kernel through SeaBIOS (KASLR). */
  kernel?: 'pvh' | 'bzImage';
  /** -device vmcoreinfo (default true): without it the bundle has no vmcoreinfo section. */
  vmcoreinfo?: boolean;
  memory?: string;
  /** Capture the running guest once (vmpm capture, stop and resume) before the host triggers the panic. */
  captureBefore?: boolean;
  /** More kernel command-line words. */
  append?: string[];
  log?: (line: string) => void;
}

export interface Scenario {
  options: ScenarioOptions;
  guest: BuildResult;
  kernelFormat: 'pvh-vmlinux' | 'bzImage';
  bundle: string;
  /** The guest's serial console, whole. */
  serial: string;
  id: string;
  /** The line /init wrote to /dev/kmsg: `VMPM-LINUX-MARKER-<id>`. */
  marker: string;
  /** Milliseconds from `cont` to the captured bundle, and of the capture itself. */
  bootMs: number;
  captureMs: number;
  dir: string;
  /** What `vmpm watch` printed for the incident, and the VMPM_PANIC its --exec hook saw. */
  notification: IncidentNotification;
  execPanic?: string;
  /** The capture taken before the trigger (captureBefore). */
  before?: string;
}

const cache = new Map<string, Promise<Scenario>>();
const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The scenario's captured guest, booted once per test process and options. */
export function scenario(options: ScenarioOptions): Promise<Scenario> {
  const key = JSON.stringify({ ...options, log: undefined });
  let p = cache.get(key);
  if (!p) {
    p = runScenario(options);
    cache.set(key, p);
  }
  return p;
}

export async function runScenario(options: ScenarioOptions, out?: string): Promise<Scenario> {
  const log = options.log ?? (() => undefined);
  const guest = await buildLinuxGuest({ log });
  const wantPvh = (options.kernel ?? 'pvh') === 'pvh' && guest.kernelFormat === 'pvh-vmlinux';
  const kernel = wantPvh ? guest.kernel : guest.bzImage;
  const dir = mkdtempSync(join(tmpdir(), `vmpm-klog-${options.trigger}-`));
  dirs.push(dir);
  const id = randomBytes(6).toString('hex');
  const serialFile = join(dir, 'serial.log');
  const serial = (): string => (existsSync(serialFile) ? readFileSync(serialFile, 'latin1') : '');
  const watchSock = join(dir, 'watch.sock');
  const captureSock = join(dir, 'capture.sock');
  let before: string | undefined;
  const panicFile = join(dir, 'exec-panic.txt');
  const scenarioWord = options.trigger === 'sysrq' ? 'panic' : options.trigger;
  const qemu: LaunchedQemu = await launchQemu(
    [
      '-kernel', kernel,
      '-initrd', guest.initrd,
      '-append', ['console=ttyS0', 'panic=0', 'printk_devkmsg=on', `guest_id=${id}`, `scenario=${scenarioWord}`, ...(options.append ?? [])].join(' '),
      '-no-reboot',
      '-device', 'pvpanic',
      ...(options.vmcoreinfo === false ? [] : ['-device', 'vmcoreinfo']),
    ],
    { memory: options.memory ?? '256M', smp: 2, startPaused: true, name: `klog-${id}`, serialFile, extraArgs: [...extraQmp(watchSock), ...extraQmp(captureSock)] },
  );
  // `vmpm watch` captures the panic the way it runs in production, and its --exec hook records the
  // VMPM_PANIC it was given.
  const watch = startWatch(['--qmp', `unix:${watchSock}`, '--out-dir', dir, '--exec', `printf '%s' "$VMPM_PANIC" > '${panicFile}'`]);
  try {
    await watch.logged('connected to QEMU');
    const client = await QmpClient.connect(qemu.endpoint, { allow: ['cont', 'inject-nmi', 'mce'] });
    const started = performance.now();
    try {
      await client.execute('cont');
      // sysrq panics right after READY, and the panic can overtake the console's copy of it: wait only
      // when the host is the trigger.
      if (options.trigger !== 'sysrq') await until(() => serial().includes(`VMPM-LINUX-READY ${id}`), READY_TIMEOUT_MS, 'the guest to print READY', serial, qemu);
      if (options.captureBefore) {
        before = join(dir, 'before.vmpm');
        const r = await runCli(['capture', '--qmp', `unix:${captureSock}`, '-o', before], { timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`vmpm capture (before) exited ${r.code}: ${r.stderr}`);
      }
      if (options.trigger === 'nmi') await client.execute('inject-nmi');
      if (options.trigger === 'mce') {
        const reply = await client.execute<string>('human-monitor-command', {
          'command-line': `mce 0 ${MCE_BANK} 0x${MCE_STATUS.toString(16)} 0x${MCE_MCG_STATUS.toString(16)} 0x${MCE_ADDR.toString(16)} 0x${MCE_MISC.toString(16)}`,
        });
        if (reply.trim() !== '') throw new Error(`HMP mce: ${reply.trim()}`);
      }
    } finally {
      await client.close();
    }
    const notification = await watch.notification(1, options.trigger === 'sysrq' ? READY_TIMEOUT_MS + PANIC_TIMEOUT_MS : PANIC_TIMEOUT_MS).catch((err: Error) => {
      throw new Error(`${err.message}\n--- serial (tail) ---\n${serial().slice(-3000)}\n--- QEMU stderr ---\n${qemu.stderr()}`);
    });
    const bootMs = Math.round(performance.now() - started);
    log(`scenario ${options.trigger}: ${notification.trigger.event} captured ${bootMs} ms after cont`);
    if (!notification.bundle) throw new Error(`watch wrote no bundle: ${JSON.stringify(notification)}`);
    let bundle = notification.bundle;
    if (out) {
      copyFileSync(bundle, out);
      bundle = out;
    }
    // The hook runs after the notification line is written: give it a moment to finish.
    await until(() => existsSync(panicFile), 10_000, 'the --exec hook', serial, qemu).catch(() => undefined);
    const execPanic = existsSync(panicFile) ? readFileSync(panicFile, 'utf8') : undefined;
    return {
      options, guest, kernelFormat: wantPvh ? 'pvh-vmlinux' : 'bzImage', bundle, serial: serial(), id, marker: `VMPM-LINUX-MARKER-${id}`,
      bootMs, captureMs: Math.round(notification.captureMs ?? 0), dir, notification, ...(execPanic !== undefined ? { execPanic } : {}), ...(before ? { before } : {}),
    };
  } finally {
    await watch.kill();
    await qemu.kill();
  }
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, serial: () => string, qemu: LaunchedQemu): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n--- serial (tail) ---\n${serial().slice(-3000)}\n--- QEMU stderr ---\n${qemu.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The hand-run command line: `TRIGGER OUT.vmpm [--bzimage] [--no-vmcoreinfo] [--memory SIZE] [-- APPEND...]`.
 * `tmpBundle` is written beside OUT (a relative OUT is taken from the working directory, an absolute one as is)
 * and renamed to OUT when the scenario completes. Undefined for a bad command line.
 */
export function scenarioCommandLine(argv: string[], cwd = process.cwd()): { options: ScenarioOptions; out: string; tmpBundle: string } | undefined {
  const [trigger, out, ...rest] = argv;
  if (!trigger || !out || !['sysrq', 'nmi', 'mce'].includes(trigger)) return undefined;
  const memAt = rest.indexOf('--memory');
  const dashes = rest.indexOf('--');
  const options: ScenarioOptions = {
    trigger: trigger as Trigger,
    kernel: rest.includes('--bzimage') ? 'bzImage' : 'pvh',
    vmcoreinfo: !rest.includes('--no-vmcoreinfo'),
    ...(memAt >= 0 ? { memory: rest[memAt + 1] } : {}),
    ...(dashes >= 0 ? { append: rest.slice(dashes + 1) } : {}),
  };
  return { options, out, tmpBundle: `${resolve(cwd, out)}.tmp.vmpm` };
}

if (require.main === module) {
  const cmd = scenarioCommandLine(process.argv.slice(2));
  if (cmd === undefined) {
    process.stderr.write('usage: node dist/test/linux/scenario.js sysrq|nmi|mce OUT.vmpm [--bzimage] [--no-vmcoreinfo] [--memory SIZE] [-- APPEND...]\n');
    process.exit(2);
  }
  const { out } = cmd;
  runScenario({ ...cmd.options, log: (l) => process.stderr.write(`${l}\n`) }, cmd.tmpBundle).then(
    (s) => {
      renameSync(s.bundle, out);
      const serialOut = `${out}.serial.log`;
      writeFileSync(serialOut, s.serial);
      process.stdout.write(`${JSON.stringify({ bundle: out, serial: serialOut, id: s.id, kernelFormat: s.kernelFormat, bootMs: s.bootMs, captureMs: s.captureMs })}\n`);
    },
    (err: Error) => {
      process.stderr.write(`scenario: ${err.message}\n`);
      process.exit(1);
    },
  );
}
