/**
 * `vmpm watch` as a library: one VmWatcher per monitor, notifications printed as one JSON line each
 * on stdout and then handed to the --exec hook, and an orderly shutdown on SIGTERM/SIGINT/SIGHUP (finish
 * the capture in flight within a grace period, or abandon it cleanly; a second signal abandons at once).
 */
import { describeError } from '../util/errors';
import type { MemoryMethod } from '../bundle/schema';
import { DomainDiscovery, connectLibvirt, libvirtEndpoint, type LibvirtTarget } from '../libvirt';
import type { BackoffOptions } from './backoff';
import type { JournalLimits } from './journal';
import type { WatchLogger } from './log';
import { describeHookResult, hookEnvironment, notificationLine, runHook, signaturePathOf, type IncidentNotification, type SignatureNotification } from './notify';
import type { Policy } from './policy';
import { applyRetention, type RetentionLimits } from './retention';
import { VmWatcher, type VmWatcherOptions } from './vm-watcher';

export interface WatchOptions {
  /** QMP sockets to watch. */
  endpoints: string[];
  /** libvirt domains to watch (through virsh). */
  libvirt?: LibvirtTarget[];
  /** Every running domain of this libvirt connection, and each one started later (`uri` undefined: virsh's default). */
  libvirtAll?: { uri?: string };
  outDir: string;
  policy: Policy;
  memory: MemoryMethod;
  log: WatchLogger;
  /** Where notification lines go (default: process.stdout). */
  writeNotification?: (line: string) => void;
  exec?: { command: string; timeoutMs: number };
  journal?: JournalLimits;
  settleMs?: number;
  connectTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** How long a capture in flight may take to finish after SIGTERM (default 30 s). */
  termGraceMs?: number;
  catchUp?: boolean;
  /**
   * Signs each finished bundle (watch --sign-key) into signaturePathOf(bundle) and returns that path;
   * the notification names it at once and a `signature` line confirms it.
   */
  signBundle?: (bundle: string) => Promise<string>;
  /** --max-bytes / --max-bundles for outDir (retention.ts): applied at start and after every incident. */
  retention?: RetentionLimits;
}

/** The signals that stop a watch in order (bin/vmpm's own handler stands back while these listeners exist: src/cli/signals.ts). */
const WATCH_STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export class Watch {
  readonly watchers: VmWatcher[] = [];
  private stopping: Promise<void> | undefined;
  private readonly hooks = new Set<Promise<void>>();
  /** run() of every watcher started so far (watchers added by --libvirt-all join while running). */
  private readonly running: Array<Promise<void>> = [];
  private started = false;
  private discovery: DomainDiscovery | undefined;
  private discovered: (() => void) | undefined;
  /** Retention passes, one at a time (several VMs' incidents may end together). */
  private pruning: Promise<void> = Promise.resolve();

  constructor(private readonly options: WatchOptions) {
    for (const endpoint of options.endpoints) this.add(endpoint);
    for (const target of options.libvirt ?? []) this.addLibvirt(target);
  }

  /** Watches one more VM; when the watch already runs, at once. Endpoints already watched are ignored. */
  add(endpoint: string, connect?: VmWatcherOptions['connect']): void {
    if (this.stopping || this.watchers.some((w) => w.endpoint === endpoint)) return;
    const o = this.options;
    const watcher = new VmWatcher(endpoint, {
      outDir: o.outDir,
      policy: o.policy,
      memory: o.memory,
      log: o.log,
      onIncident: (n) => this.notify(n),
      onResumeRecorded: () => this.prune(),
      ...(o.journal ? { journal: o.journal } : {}),
      ...(o.settleMs !== undefined ? { settleMs: o.settleMs } : {}),
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      ...(o.backoff ? { backoff: o.backoff } : {}),
      ...(o.catchUp !== undefined ? { catchUp: o.catchUp } : {}),
      ...(connect ? { connect } : {}),
    });
    this.watchers.push(watcher);
    if (this.started) this.running.push(watcher.run());
  }

  addLibvirt(target: LibvirtTarget): void {
    this.add(libvirtEndpoint(target), async (co) => ({ client: (await connectLibvirt(target, { ...co, connectTimeoutMs: Math.max(co.connectTimeoutMs ?? 0, 15_000) })).client }));
  }

  /** Runs until stop(); resolves once every watcher has finished and every hook has returned. */
  async run(): Promise<void> {
    this.started = true;
    this.prune();
    this.running.push(...this.watchers.map((w) => w.run()));
    const all = this.options.libvirtAll;
    if (all) {
      // --libvirt-all: keeps the watch alive with no domain yet, until stop().
      this.running.push(new Promise<void>((resolve) => (this.discovered = resolve)));
      this.discovery = new DomainDiscovery(
        all.uri,
        (domain) => {
          this.options.log.log('info', domain, `libvirt domain ${domain} is running: watching it`);
          this.addLibvirt(all.uri === undefined ? { domain } : { domain, uri: all.uri });
        },
        (level, message) => this.options.log.log(level, undefined, message),
      );
      await this.discovery.start();
    }
    // Watchers may be added while waiting: wait until no new run() appeared.
    for (let n = 0; n !== this.running.length; ) {
      n = this.running.length;
      await Promise.all(this.running);
    }
    await this.stopping;
  }

  stop(graceMs = this.options.termGraceMs ?? 30_000): Promise<void> {
    this.stopping ??= (async () => {
      await this.discovery?.stop();
      this.discovered?.();
      await Promise.all(this.watchers.map((w) => w.stop(graceMs)));
      await Promise.all([...this.hooks]);
      await this.pruning;
    })();
    return this.stopping;
  }

  /** The signal that started the shutdown (handleSignals), if one did: `vmpm watch` exits 129 for SIGHUP. */
  stopSignal: NodeJS.Signals | undefined;

  /**
   * Wires SIGTERM, SIGINT and SIGHUP to stop(); a second signal cuts the grace period to zero. SIGHUP
   * is what a watch started from a terminal gets when that terminal closes: it must not cut a capture
   * half-way any more than SIGTERM does. Returns a function that removes the handlers.
   */
  handleSignals(): () => void {
    let count = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      count += 1;
      if (count === 1) {
        this.stopSignal = sig;
        this.options.log.log('info', undefined, `${sig}: stopping (a capture in flight gets ${this.options.termGraceMs ?? 30_000} ms; send again to abandon it)`);
        void this.stop();
      } else {
        this.options.log.log('warn', undefined, `${sig} again: abandoning any capture in flight`);
        for (const w of this.watchers) void w.stop(0);
      }
    };
    for (const sig of WATCH_STOP_SIGNALS) process.on(sig, onSignal);
    return () => {
      for (const sig of WATCH_STOP_SIGNALS) process.off(sig, onSignal);
    };
  }

  /**
   * stdout first, synchronously, so a hook that hangs or crashes can never cost the notification.
   * Signing (one sha512 pass over the bundle, about a second per GB) never delays the line: it names
   * the signature file being written, and a `signature` line follows once it is written (or failed).
   * The hook runs after that, so VMPM_SIGNATURE names a file that exists, or is empty.
   */
  private async notify(n: IncidentNotification): Promise<void> {
    let signing: Promise<SignatureNotification> | undefined;
    if (this.options.signBundle && n.bundle) {
      n.signature = signaturePathOf(n.bundle);
      signing = this.sign(n, n.bundle);
    }
    this.write(notificationLine(n));
    if (signing) {
      const s = await signing;
      n.signature = s.signature;
      this.write(notificationLine(s));
    }
    // After the line (retention never delays a notification) and after signing the new bundle.
    this.prune();
    const exec = this.options.exec;
    if (!exec) return;
    const vm = n.vm.name ?? n.vm.uuid ?? n.vm.endpoint;
    const hook = runHook(exec.command, hookEnvironment(n), exec.timeoutMs).then((r) => {
      const ok = r.code === 0;
      this.options.log.log(ok ? 'info' : 'error', vm, `--exec hook ${describeHookResult(r, exec.timeoutMs)}`, { hookExitCode: r.code, hookTimedOut: r.timedOut });
    });
    this.hooks.add(hook);
    await hook;
    this.hooks.delete(hook);
  }

  private async sign(n: IncidentNotification, bundle: string): Promise<SignatureNotification> {
    const line: SignatureNotification = { type: 'signature', at: '', vm: n.vm, bundle, signature: null };
    try {
      line.signature = await this.options.signBundle!(bundle);
    } catch (err) {
      line.error = `could not sign ${bundle}: ${describeError(err)}`;
      this.options.log.log('error', n.vm.endpoint, line.error);
    }
    line.at = new Date().toISOString();
    return line;
  }

  /** Queues a retention pass over the out-dir (no-op without limits). Never rejects. */
  private prune(): void {
    const limits = this.options.retention;
    if (!limits || (limits.maxBytes === undefined && limits.maxBundles === undefined)) return;
    const log = this.options.log;
    this.pruning = this.pruning.then(async () => {
      try {
        const running = this.watchers.map((w) => w.runningNow()).filter((v) => v !== undefined);
        await applyRetention(this.options.outDir, limits, running, (level, message) => log.log(level, undefined, message));
      } catch (err) {
        log.log('warn', undefined, `retention: ${describeError(err)}`);
      }
    });
  }

  private write(line: string): void {
    if (this.options.writeNotification) this.options.writeNotification(`${line}\n`);
    else process.stdout.write(`${line}\n`);
  }
}
