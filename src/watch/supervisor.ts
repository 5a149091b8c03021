/**
 * `vmpm watch` as a library: one VmWatcher per monitor, notifications printed as one JSON line each
 * on stdout and then handed to the --exec hook, and an orderly shutdown on SIGTERM/SIGINT (finish the
 * capture in flight within a grace period, or abandon it cleanly; a second signal abandons at once).
 */
import { describeError } from '../util/errors';
import type { MemoryMethod } from '../bundle/schema';
import { DomainDiscovery, connectLibvirt, libvirtEndpoint, type LibvirtTarget } from '../libvirt';
import type { BackoffOptions } from './backoff';
import type { JournalLimits } from './journal';
import type { WatchLogger } from './log';
import { describeHookResult, hookEnvironment, notificationLine, runHook, type IncidentNotification } from './notify';
import type { Policy } from './policy';
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
  /** Signs each finished bundle (watch --sign-key) and returns the signature's path; the notification carries it. */
  signBundle?: (bundle: string) => Promise<string>;
}

export class Watch {
  readonly watchers: VmWatcher[] = [];
  private stopping: Promise<void> | undefined;
  private readonly hooks = new Set<Promise<void>>();
  /** run() of every watcher started so far (watchers added by --libvirt-all join while running). */
  private readonly running: Array<Promise<void>> = [];
  private started = false;
  private discovery: DomainDiscovery | undefined;
  private discovered: (() => void) | undefined;

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
    })();
    return this.stopping;
  }

  /**
   * Wires SIGTERM and SIGINT to stop(); a second signal cuts the grace period to zero. Returns a
   * function that removes the handlers.
   */
  handleSignals(): () => void {
    let count = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      count += 1;
      if (count === 1) {
        this.options.log.log('info', undefined, `${sig}: stopping (a capture in flight gets ${this.options.termGraceMs ?? 30_000} ms; send again to abandon it)`);
        void this.stop();
      } else {
        this.options.log.log('warn', undefined, `${sig} again: abandoning any capture in flight`);
        for (const w of this.watchers) void w.stop(0);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    return () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
  }

  /** stdout first, synchronously, so a hook that hangs or crashes can never cost the notification. */
  private async notify(n: IncidentNotification): Promise<void> {
    if (this.options.signBundle && n.bundle) {
      // Signed before the line goes out, so HA software and the hook get the signature's path with the bundle.
      try {
        n.signature = await this.options.signBundle(n.bundle);
      } catch (err) {
        n.signature = null;
        this.options.log.log('error', n.vm.endpoint, `could not sign ${n.bundle}: ${describeError(err)}`);
      }
    }
    const line = `${notificationLine(n)}\n`;
    if (this.options.writeNotification) this.options.writeNotification(line);
    else process.stdout.write(line);
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
}
