/**
 * A plain QMP socket to a QEMU that libvirt runs: vmpm may talk to it (read-only queries, stop,
 * pmemsave), but never sends it `dump-guest-memory`. libvirtd 9.0 segfaulted in 3 of 5 captures that
 * did (in qemuProcessHandleDumpCompleted, on the DUMP_COMPLETED of a dump it had not started). The
 * guard sits between the session and the socket, so it holds for every command that reaches the
 * socket this way (capture, watch, `vmpm qmp`): the refused command gets an error reply and never
 * reaches QEMU. Memory then goes through pmemsave; `--libvirt DOMAIN` gets it through libvirt's own
 * dump job instead.
 */
import { parseJson, parseEndpoint, QmpClient, SocketTransport, stringifyJson, type ConnectOptions, type Endpoint, type QmpTransport, type TransportCapabilities, type TransportHandlers } from '../qmp';
import { qemuBehindEndpoint, type OwnerLookup } from './ownership';

/**
 * Commands never forwarded to a libvirt-run QEMU: jobs whose completion events libvirt handles as its
 * own (DUMP_COMPLETED crashed it; MIGRATION events drive its migration jobs the same way).
 */
const NEVER = new Set(['dump-guest-memory', 'migrate']);

export class LibvirtOwnedGuard implements QmpTransport {
  readonly endpoint: string;
  readonly capabilities: TransportCapabilities;
  private handlers: TransportHandlers | undefined;

  constructor(
    private readonly inner: QmpTransport,
    private readonly why: string,
  ) {
    this.endpoint = inner.endpoint;
    this.capabilities = inner.capabilities;
  }

  /** The socket's QEMU instance (QmpTransport.instance), passed through. */
  get instance(): string | null {
    return this.inner.instance ?? null;
  }

  connect(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    return this.inner.connect(handlers);
  }

  send(text: string, fds?: readonly number[]): void {
    const refused = refusedCommand(text);
    if (refused === undefined) {
      this.inner.send(text, fds);
      return;
    }
    const reply: Record<string, unknown> = {
      error: {
        class: 'GenericError',
        desc: `vmpm does not send ${refused.command} to a QEMU that libvirt runs (${this.why}): libvirt handles that job's events as its own (dump-guest-memory crashed libvirtd 9.0); use pmemsave, or --libvirt DOMAIN for libvirt's own dump`,
      },
    };
    if (refused.id !== undefined) reply.id = refused.id;
    const line = stringifyJson(reply);
    queueMicrotask(() => this.handlers?.onMessage(line));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  destroy(): void {
    this.inner.destroy();
  }
}

function refusedCommand(text: string): { command: string; id: unknown } | undefined {
  try {
    const msg = parseJson(text);
    if (msg !== null && typeof msg === 'object' && !Array.isArray(msg) && typeof msg.execute === 'string' && NEVER.has(msg.execute)) {
      return { command: msg.execute, id: msg.id };
    }
  } catch {
    // not JSON: the socket gets it and QEMU answers
  }
  return undefined;
}

export interface GuardedSession {
  client: QmpClient;
  /** What /proc says about the QEMU behind the endpoint. */
  owner: OwnerLookup;
  /** Set when libvirt runs that QEMU: the evidence, for warnings and the manifest. */
  libvirtOwned: string | undefined;
}

/** QmpClient.connect for a plain endpoint, with the guard in place when libvirt runs the QEMU behind it. */
export async function connectQmpGuarded(endpoint: string | Endpoint, options: ConnectOptions = {}): Promise<GuardedSession> {
  const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  const owner = qemuBehindEndpoint(ep);
  const libvirt = owner.found ? owner.owner.libvirt : null;
  const socket = new SocketTransport(ep, options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes });
  if (libvirt === null) return { client: await QmpClient.over(socket, options), owner, libvirtOwned: undefined };
  const why = `domain ${libvirt.domain ?? '(unnamed)'}: ${libvirt.evidence}`;
  return { client: await QmpClient.over(new LibvirtOwnedGuard(socket, why), options), owner, libvirtOwned: why };
}
