import type { Command } from 'commander';
import { whenStdoutGone } from '../pipes';
import { exitCodeForSignal } from '../signals';
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEndpoint, formatEndpoint } from '../../qmp';
import { UsageError } from '../../util/errors';
import { isRemoteUri, libvirtEndpoint } from '../../libvirt';
import { parseCount, parseMilliseconds, parseSmallInt } from '../output/args';
import { memoryMethodFrom } from './capture';
import { loadSigningKey, signFile } from '../../custody';
import { Watch, defaultPolicy, describeRule, loadPolicyFile, signaturePathOf, stderrLogger } from '../../watch';
import { describeLeftover, releaseFifoLeftovers } from '../../capture/leftovers';

interface WatchCommandOptions {
  qmp: string[];
  libvirt: string[];
  libvirtAll?: boolean;
  connect?: string;
  outDir?: string;
  policy?: string;
  exec?: string;
  execTimeout: string;
  memoryMethod: string;
  memory: boolean;
  settle: string;
  termGrace: string;
  journalEvents: string;
  catchUp: boolean;
  printPolicy?: boolean;
  json?: boolean;
  signKey?: string;
  maxBytes?: string;
  maxBundles?: string;
}

/**
 * `vmpm watch`: stop and capture a VM the moment policy calls an event serious, keep it stopped
 * (failover-safe), and tell HA software with a JSON line on stdout and an optional hook.
 */
export function register(program: Command): void {
  program
    .command('watch')
    .description('on a serious QEMU event: stop the VM at once, capture it into --out-dir, keep it stopped, notify')
    .option('--qmp <endpoint>', 'QMP monitor to watch (repeatable): unix:PATH, a socket path, or tcp:HOST:PORT', collect, [])
    .option('--libvirt <domain>', 'libvirt domain to watch, through virsh (repeatable)', collect, [])
    .option('--libvirt-all', 'every running domain of the libvirt connection, and each one started later')
    .option('--connect <uri>', 'libvirt connection URI for --libvirt / --libvirt-all (default: virsh\'s)')
    .option('--out-dir <dir>', 'directory the incident bundles are written to (must exist)')
    .option('--policy <file>', 'JSON policy file: add, drop or re-grade events (format: samples/policies/README.md)')
    .option('--exec <command>', 'run this shell command per incident, with VMPM_* environment variables')
    .option('--exec-timeout <ms>', 'kill the --exec hook after this long', '30000')
    .option('--memory-method <method>', 'guest RAM capture: dump or pmemsave', 'dump')
    .option('--no-memory', 'metadata-only bundles (registers, memory map, devices, errors, journal)')
    .option('--settle <ms>', 'after stopping, wait this long so a storm of events lands in one bundle', '100')
    .option('--term-grace <ms>', 'on SIGTERM, SIGINT or SIGHUP, let a capture in flight finish for this long before abandoning it', '30000')
    .option('--journal-events <n>', 'events kept in each VM\'s rolling journal', '2000')
    .option('--no-catch-up', 'do not capture a VM found already panicked or in io-error when connecting')
    .option('--print-policy', 'print the effective policy rules and exit')
    .option('--json', 'log on stderr as JSON lines (notifications on stdout are always JSON)')
    .option('--max-bytes <n>', 'keep the watch\'s bundles in --out-dir within N bytes (4G, 500M ...): oldest deleted first, never the newest of a VM that may still be stopped')
    .option('--max-bundles <n>', 'keep at most N of the watch\'s bundles in --out-dir (same rules as --max-bytes)')
    .option('--sign-key <file>', 'sign each bundle (SSHSIG, BUNDLE.sig) with this OpenSSH Ed25519 key; the notification carries the .sig path')
    .addHelpText(
      'after',
      `
stdout: one JSON line per incident: {"type":"incident","vm":{...},"trigger":{...},"stoppedBy":"vmpm",
  "stopMs":0.9,"bundle":"/var/lib/vmpm/vm1-...-guest_panicked.vmpm","sha256":"...","failoverSafe":true,...}
Hook environment: VMPM_EVENT VMPM_EVENT_TIME VMPM_TRIGGER_SOURCE VMPM_VM_ENDPOINT VMPM_VM_NAME VMPM_VM_UUID VMPM_STOPPED_BY
  VMPM_STOP_MS VMPM_BUNDLE VMPM_SHA256 VMPM_SIGNATURE VMPM_FAILOVER_SAFE (1/0) VMPM_ERROR VMPM_NOTIFICATION (the JSON line)

Examples:
  vmpm watch --qmp unix:/run/vm1.qmp --qmp unix:/run/vm2.qmp --out-dir /var/lib/vmpm
  vmpm watch --qmp /run/vm1.qmp --out-dir /var/lib/vmpm --policy site.json --exec '/usr/local/bin/ha-notify'
  vmpm watch --libvirt web1 --libvirt db1 --out-dir /var/lib/vmpm
  vmpm watch --libvirt-all --connect qemu:///system --out-dir /var/lib/vmpm --exec /usr/local/bin/ha-notify`,
    )
    .action(runWatch);
}

/** The action: options checked up front (a bad one is a usage error before anything is watched), then watch until stopped. */
async function runWatch(options: WatchCommandOptions, cmd: Command): Promise<void> {
  const policy = options.policy ? loadPolicyFile(options.policy) : defaultPolicy();
  if (options.printPolicy) {
    process.stdout.write(`policy: ${policy.source}\n${policy.rules.map((r) => `  ${describeRule(r)}`).join('\n')}\n`);
    return;
  }
  if (options.qmp.length === 0 && options.libvirt.length === 0 && !options.libvirtAll) {
    throw new UsageError('watch: at least one --qmp ENDPOINT, --libvirt DOMAIN or --libvirt-all is required');
  }
  if (options.connect !== undefined && options.libvirt.length === 0 && !options.libvirtAll) throw new UsageError('--connect URI goes with --libvirt or --libvirt-all');
  const uri = options.connect;
  const libvirt = [...new Set(options.libvirt)].map((domain) => (uri === undefined ? { domain } : { domain, uri }));
  if (!options.outDir) throw new UsageError('watch: --out-dir DIR is required');
  const outDir = resolve(options.outDir);
  checkOutDir(outDir);
  const endpoints = [...new Set(options.qmp.map((e) => formatEndpoint(parseEndpoint(e))))];
  const memory = memoryMethodFrom(options, cmd.getOptionValueSource('memoryMethod') === 'cli');
  if (uri !== undefined && isRemoteUri(uri) && memory !== 'none') {
    throw new UsageError(`--connect ${uri} is another host: libvirt would write guest memory there, not into the bundles; add --no-memory, or run vmpm watch on that host`);
  }
  // Every number is checked up front, even those only used later (--exec-timeout without --exec).
  const execTimeoutMs = parseMilliseconds(options.execTimeout, '--exec-timeout');
  const settleMs = parseMilliseconds(options.settle, '--settle', { allowZero: true });
  const termGraceMs = parseMilliseconds(options.termGrace, '--term-grace', { allowZero: true });
  const journalEvents = parseSmallInt(options.journalEvents, '--journal-events', 1);
  const retention = {
    ...(options.maxBytes !== undefined ? { maxBytes: Number(parseCount(options.maxBytes, '--max-bytes', BigInt(Number.MAX_SAFE_INTEGER))) } : {}),
    ...(options.maxBundles !== undefined ? { maxBundles: parseSmallInt(options.maxBundles, '--max-bundles', 1) } : {}),
  };
  // Loaded before watching: a bad key is a startup error, not a failure at the first incident.
  const signKey = options.signKey === undefined ? undefined : await loadSigningKey(options.signKey);
  const log = stderrLogger({ json: options.json === true });
  // Before connecting: a killed vmpm's FIFO may hold libvirtd (the domain's job) or QEMU (its monitor) in open().
  for (const l of releaseFifoLeftovers()) log.log('warn', undefined, describeLeftover(l));
  const watch = new Watch({
    endpoints,
    libvirt,
    ...(options.libvirtAll ? { libvirtAll: uri === undefined ? {} : { uri } } : {}),
    outDir,
    policy,
    memory,
    log,
    ...(options.exec ? { exec: { command: options.exec, timeoutMs: execTimeoutMs } } : {}),
    settleMs,
    termGraceMs,
    journal: { maxEvents: journalEvents },
    catchUp: options.catchUp,
    retention,
    ...(signKey ? { signBundle: async (bundle: string) => (await signFile(bundle, signKey, { signaturePath: signaturePathOf(bundle) })).signature } : {}),
  });
  const watched = [...endpoints, ...libvirt.map((t) => libvirtEndpoint(t)), ...(options.libvirtAll ? [`every libvirt domain${uri ? ` of ${uri}` : ''}`] : [])];
  const limits = [retention.maxBytes !== undefined ? `at most ${retention.maxBytes} bytes` : '', retention.maxBundles !== undefined ? `at most ${retention.maxBundles} bundles` : ''].filter(Boolean).join(', ');
  log.log('info', undefined, `watching ${watched.join(', ')}; bundles into ${outDir}${limits ? ` (${limits})` : ''}; memory ${memory}; policy ${policy.source}`);
  const removeHandlers = watch.handleSignals();
  // The HA reader of the notifications went away: stop as on SIGTERM (a capture in flight may finish).
  const restorePipe = whenStdoutGone(() => {
    log.log('warn', undefined, 'standard output was closed (its reader went away): stopping');
    void watch.stop();
  });
  try {
    await watch.run();
  } finally {
    removeHandlers();
    restorePipe();
  }
  const s = watch.watchers.reduce((a, w) => ({ events: a.events + w.stats.events, incidents: a.incidents + w.stats.incidents }), { events: 0, incidents: 0 });
  log.log('info', undefined, `stopped: ${s.events} event(s) seen, ${s.incidents} incident(s)`);
  // SIGTERM/SIGINT are watch's normal stop (exit 0); a hangup is not one a supervisor asked for: 128 + 1.
  if (watch.stopSignal === 'SIGHUP') process.exitCode = exitCodeForSignal('SIGHUP');
}

function checkOutDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new UsageError(`--out-dir ${dir}: must be an existing writable directory (${(err as Error).message})`);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
