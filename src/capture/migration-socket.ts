/**
 * The unix socket QEMU's `migrate` connects to (`unix:<path>`): vmpm listens in its private 0700
 * directory, takes exactly one connection and reads the stream from it, so the RAM never lands on
 * disk and no shell (`exec:`) is involved. Bounded waits: QEMU must connect within `connectTimeoutMs`
 * and may stay silent at most `idleTimeoutMs` (time spent waiting for QEMU only, as for FIFOs).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { VmpmError } from '../util/errors';

export interface MigrationSocketOptions {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
  onBytes?: (total: number) => void;
}

export class MigrationSocket {
  private readonly server: Server;
  private socket: Socket | undefined;
  private connected: Promise<Socket>;
  private closed = false;
  private closeReason: Error | undefined;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  private constructor(
    readonly path: string,
    private readonly options: MigrationSocketOptions,
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.server = createServer();
    this.connected = new Promise<Socket>((resolve, reject) => {
      this.server.on('connection', (s: Socket) => {
        // One stream only: a second connection is not QEMU's and is refused.
        if (this.socket || this.closed) {
          s.destroy();
          return;
        }
        this.socket = s;
        resolve(s);
      });
      this.server.on('error', reject);
      this.server.on('close', () => reject(this.closeReason ?? new VmpmError('migration socket closed before QEMU connected')));
    });
    this.connected.catch(() => undefined);
  }

  static async listen(path: string, options: MigrationSocketOptions = {}): Promise<MigrationSocket> {
    const s = new MigrationSocket(path, options);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  get uri(): string {
    return `unix:${this.path}`;
  }

  /** The stream's chunks until QEMU closes it. Fails on the bounds above or when close() is called. */
  async *chunks(): AsyncGenerator<Buffer> {
    const socket = await this.withTimeout(this.connected, this.connectTimeoutMs, `QEMU did not connect to the migration socket within ${this.connectTimeoutMs} ms`);
    this.server.close(); // no further connections
    let total = 0;
    const it = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      const next = await this.withTimeout(it.next(), this.idleTimeoutMs, `the migration stream stalled: no data for ${this.idleTimeoutMs} ms`);
      if (next.done) break;
      total += next.value.length;
      this.options.onBytes?.(total);
      yield next.value;
    }
    if (this.closeReason) throw this.closeReason;
  }

  /** Stops listening and drops the connection; `reason` is what a pending read fails with. Idempotent. */
  close(reason?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason ?? new VmpmError('migration socket closed');
    this.socket?.destroy(this.closeReason);
    this.server.close();
  }

  private async withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new VmpmError(message)), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
