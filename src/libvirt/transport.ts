/**
 * The libvirt QmpTransport: a QMP session (QmpClient.over) whose messages are carried out by
 * LibvirtMonitor through virsh. libvirtd owns QEMU's monitor and has read its greeting, so the
 * transport has none (the session asks query-version); virsh cannot pass descriptors to QEMU for
 * vmpm, so fdPassing is false. capture, watch, state and qmp run unchanged above it.
 */
import { QmpClient, QmpConnectError, type ConnectOptions, type QmpTransport, type TransportCapabilities, type TransportHandlers } from '../qmp';
import { LibvirtError } from './errors';
import { LibvirtMonitor, libvirtEndpoint, type LibvirtFacts, type LibvirtMonitorOptions, type LibvirtTarget } from './monitor';

export class LibvirtTransport implements QmpTransport {
  readonly endpoint: string;
  readonly capabilities: TransportCapabilities = { greeting: false, fdPassing: false };
  private monitor: LibvirtMonitor | undefined;
  private handlers: TransportHandlers | undefined;
  private ended = false;

  constructor(
    readonly target: LibvirtTarget,
    private readonly options: LibvirtMonitorOptions = {},
  ) {
    this.endpoint = libvirtEndpoint(target);
  }

  /**
   * This start of the domain: its libvirt domain id, which changes each time the domain is started
   * and stays while its QEMU runs (libvirtd reconnecting after a restart keeps it). libvirtd restarted
   * with no domain running counts ids from 1 again, so a later start may repeat an id: that case is
   * taken for the same QEMU (never the reverse). null before connect or when libvirt gave none.
   */
  get instance(): string | null {
    const id = this.monitor?.facts.id;
    return typeof id === 'number' ? `libvirt-domain-id:${id}` : null;
  }

  /** The domain's facts as read when the transport connected. */
  get facts(): LibvirtFacts {
    if (!this.monitor) throw new Error(`${this.endpoint} is not connected`);
    return this.monitor.facts;
  }

  async connect(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    let monitor: LibvirtMonitor;
    try {
      monitor = await LibvirtMonitor.open(this.target, this.options);
    } catch (err) {
      if (err instanceof LibvirtError) throw new QmpConnectError(err.message, { code: `libvirt:${err.kind}`, cause: err });
      throw err;
    }
    this.monitor = monitor;
    monitor.onLine((text) => {
      if (!this.ended) handlers.onMessage(text);
    });
    monitor.onClose((err) => this.end(err));
  }

  send(text: string, fds?: readonly number[]): void {
    if (fds !== undefined && fds.length > 0) throw new QmpConnectError(`${this.endpoint} cannot pass file descriptors to QEMU`);
    this.monitor?.send(text);
  }

  async close(): Promise<void> {
    await this.monitor?.close();
    this.end(undefined);
  }

  destroy(): void {
    void this.monitor?.close();
    this.end(undefined);
  }

  private end(reason: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers?.onClose(reason);
  }
}

/** A QMP session to a libvirt domain, plus the domain facts read on the way. */
export async function connectLibvirt(
  target: LibvirtTarget,
  options: ConnectOptions & { virshTimeoutMs?: number } = {},
): Promise<{ client: QmpClient; transport: LibvirtTransport }> {
  const transport = new LibvirtTransport(target, options.virshTimeoutMs !== undefined ? { timeoutMs: options.virshTimeoutMs } : {});
  // Opening reads four facts through virsh before the session's own query-version: give it room.
  const client = await QmpClient.over(transport, { ...options, connectTimeoutMs: options.connectTimeoutMs ?? 15_000 });
  return { client, transport };
}
