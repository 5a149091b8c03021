/**
 * `watch --libvirt-all`: every running domain of a libvirt connection, and every domain started
 * later. The running ones come from `virsh list --name`; later ones from libvirt's lifecycle event
 * "Started" on `virsh event --all --loop` (no domain: all of them). When that stream ends (libvirtd
 * restarted), it is started again after a pause and the list read again, so nothing started in
 * between is missed. Each domain is reported once; the caller's watcher handles its restarts.
 */
import { runningDomains } from './domain';
import { parseDomainEventLine, splitLifecycle } from './event-lines';
import { VirshStream } from './stream';
import { Virsh } from './virsh';

const RESTART_DELAY_MS = 2000;

export class DomainDiscovery {
  private readonly virsh: Virsh;
  private readonly seen = new Set<string>();
  private stream: VirshStream | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    uri: string | undefined,
    private readonly onDomain: (name: string) => void,
    private readonly log: (level: 'info' | 'warn', message: string) => void,
  ) {
    this.virsh = new Virsh(uri === undefined ? {} : { uri });
  }

  /** Starts listening, then lists what runs now. A failure to list is logged and retried. */
  async start(): Promise<void> {
    if (this.stopped) return;
    this.stream = new VirshStream(this.virsh, ['event', '--all', '--loop'], (line) => {
      const e = parseDomainEventLine(line);
      if (e?.kind === 'lifecycle' && splitLifecycle(e.detail).event === 'Started') this.report(e.domain);
    });
    void this.stream.ended.then((end) => {
      if (end.byUs || this.stopped) return;
      this.log('warn', `libvirt event stream ended (${end.reason}); listening again in ${RESTART_DELAY_MS} ms`);
      this.timer = setTimeout(() => void this.start(), RESTART_DELAY_MS);
    });
    try {
      for (const name of await runningDomains(this.virsh)) this.report(name);
    } catch (err) {
      this.log('warn', `cannot list libvirt domains: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.stream?.close();
  }

  private report(name: string): void {
    if (this.seen.has(name) || this.stopped) return;
    this.seen.add(name);
    this.onDomain(name);
  }
}
