/**
 * The unix socket QEMU's `migrate` connects to (`unix:<path>`): vmpm listens in its private 0700
 * directory, takes exactly one connection and reads the stream from it, so the RAM never lands on
 * disk and no shell (`exec:`) is involved. Bounded waits: QEMU must connect within `connectTimeoutMs`
 * and may stay silent at most `idleTimeoutMs` (time spent waiting for QEMU only, as for FIFOs) with no
 * other sign of progress: QEMU 7.2's background-snapshot setup sends nothing for as long as it reads
 * every guest page, so the owner, which asks QEMU (query-migrate status `setup`), calls alive() for
 * each answer and the silence is counted from the latest (snapshot-setup-watch.ts).
 *
 * Breaking the connection is left to the owner (drainThenClose): QEMU 7.2 can deadlock its main loop
 * when a background snapshot's connection breaks while it is still setting up (measured), so a
 * failed capture keeps reading and discarding until the snapshot is past its setup, then closes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { VmpmError } from '../util/errors';
import { ioDeadline } from '../util/io-deadline';

export interface MigrationSocketOptions {
  connectTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** Chunks read ahead of the consumer before the socket is paused (backpressure). */
const QUEUE_CHUNKS = 16;

export class MigrationSocket {
  private readonly server: Server;
  private socket: Socket | undefined;
  private readonly queue: Buffer[] = [];
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private interrupted: Error | undefined;
  private closed = false;
  /** Giving up: whatever arrives is read and dropped until close(). */
  private draining = false;
  private readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** performance.now() of the latest sign of progress that is not data (alive()). */
  private lastAlive = -Infinity;

  private constructor(
    readonly path: string,
    options: MigrationSocketOptions,
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.server = createServer((s: Socket) => this.accept(s));
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

  get connected(): boolean {
    return this.socket !== undefined;
  }

  private accept(s: Socket): void {
    // One stream only: a second connection is not QEMU's and is refused.
    if (this.socket || this.closed) {
      s.destroy();
      return;
    }
    this.socket = s;
    this.server.close(); // no further connections
    if (this.draining) {
      s.on('data', () => undefined);
      s.on('error', () => undefined);
      return;
    }
    s.on('data', (chunk: Buffer) => {
      this.queue.push(chunk);
      if (this.queue.length >= QUEUE_CHUNKS) s.pause();
      this.notify();
    });
    s.on('end', () => {
      this.ended = true;
      this.notify();
    });
    s.on('error', (err) => {
      this.error ??= err;
      this.notify();
    });
    s.on('close', () => {
      this.ended = true;
      this.notify();
    });
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Makes a pending or later read fail with `reason` (the connection stays as it is). */
  interrupt(reason: Error): void {
    this.interrupted ??= reason;
    this.notify();
  }

  /**
   * QEMU said it is working though the stream is silent (its snapshot setup): the idle bound restarts
   * from now. Not a bound on the connection: QEMU must still connect within connectTimeoutMs.
   */
  alive(): void {
    this.lastAlive = performance.now();
  }

  /** The stream's chunks until QEMU closes it; fails on the bounds above or after interrupt(). */
  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.interrupted) throw this.interrupted;
      const chunk = this.queue.shift();
      if (chunk) {
        if (this.queue.length < QUEUE_CHUNKS / 2) this.socket?.resume();
        yield chunk;
        continue;
      }
      if (this.error) throw new VmpmError(`the migration stream failed: ${this.error.message}`);
      if (this.ended) return;
      if (this.socket) await this.waitWhileSilent();
      else if (!(await this.waitForNews(this.connectTimeoutMs))) {
        throw new VmpmError(`QEMU did not connect to the migration socket within ${this.connectTimeoutMs} ms`);
      }
    }
  }

  /** Until news (data, end, error, interrupt): fails once idleTimeoutMs pass from now or the latest alive(), whichever is later. */
  private async waitWhileSilent(): Promise<void> {
    const since = performance.now();
    for (;;) {
      const left = Math.max(since, this.lastAlive) + this.idleTimeoutMs - performance.now();
      if (left <= 0) throw new VmpmError(`the migration stream stalled: no data for ${this.idleTimeoutMs} ms`);
      if (await this.waitForNews(left)) return;
    }
  }

  /**
   * True on news, false when `ms` passed without any. Data that reached the kernel while vmpm's own
   * loop was stalled (a long synchronous chunk, a loaded machine) is news, not silence (io-deadline.ts).
   */
  private waitForNews(ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const wake = (): void => {
        deadline.cancel();
        resolve(true);
      };
      const deadline = ioDeadline(ms, () => {
        if (this.wake === wake) this.wake = undefined;
        resolve(false);
      });
      this.wake = wake;
    });
  }

  /**
   * Keeps reading (and discarding) until `safe` settles or `maxMs` passes, then closes: the way to
   * give up on a snapshot without breaking its connection while QEMU sets it up.
   */
  async drainThenClose(safe: Promise<unknown>, maxMs: number): Promise<void> {
    if (!this.closed) {
      // Still listening when QEMU has not connected yet: its connection may be on its way, and
      // refusing it during setup is the same hazard as breaking it.
      this.draining = true;
      this.queue.length = 0;
      if (this.socket) {
        this.socket.removeAllListeners('data');
        this.socket.on('data', () => undefined);
        this.socket.resume();
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([safe.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, maxMs)))]);
      clearTimeout(timer);
    }
    this.close();
  }

  /** Stops listening and drops the connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.interrupted ??= new VmpmError('migration socket closed');
    this.socket?.destroy();
    this.server.close();
    this.notify();
  }
}
