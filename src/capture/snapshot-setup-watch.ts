/**
 * QEMU's background-snapshot setup, watched. QEMU 7.2 reads every guest page before its own stop
 * (ram_write_tracking_prepare in its snapshot thread, outside the big lock: the monitor keeps
 * answering) and sends nothing on the stream meanwhile; on a loaded host that took longer than the
 * stream-idle bound (28 s per GiB at load 30 in one session, 16 ms for 4 GiB at load 4 in another).
 * Silence then is not a stall, so while query-migrate answers `setup` each answer marks the socket
 * alive, and the setup has a bound of its own (generous, growing with RAM). Once QEMU is past its
 * setup only data counts. A monitor that stops answering marks nothing: the idle bound ends the
 * capture. A snapshot QEMU reports failed or cancelled during its setup ends the read at once, with
 * QEMU's reason.
 */
import type { QmpClient } from '../qmp';
import { VmpmError } from '../util/errors';
import type { MigrationSocket } from './migration-socket';
import { MigrationEndedError, describeMigrationEnd, migrationGaveUp, queryMigrate, type MigrationInfo } from './migration-status';

const MIN_SETUP_BOUND_MS = 600_000;
const SETUP_BOUND_MS_PER_GIB = 120_000;

/** The default setup bound for `ramBytes` of guest RAM: 2 minutes per GiB, at least 10 minutes. */
export function defaultSetupTimeoutMs(ramBytes: number): number {
  return Math.max(MIN_SETUP_BOUND_MS, Math.ceil((ramBytes / 2 ** 30) * SETUP_BOUND_MS_PER_GIB));
}

export interface SetupWatchOptions {
  /** performance.now() when `migrate` was sent. */
  startedAt: number;
  setupTimeoutMs: number;
  /** The socket's idle bound: polls come well within it. */
  idleTimeoutMs: number;
}

export class SetupWatch {
  private stopped = false;
  private wake: (() => void) | undefined;

  private constructor(
    private readonly client: QmpClient,
    private readonly socket: MigrationSocket,
    private readonly options: SetupWatchOptions,
  ) {}

  /** Starts watching at once; stop() ends it. The watch never throws: it tells the socket (alive(), interrupt()). */
  static start(client: QmpClient, socket: MigrationSocket, options: SetupWatchOptions): SetupWatch {
    const watch = new SetupWatch(client, socket, options);
    void watch.watch();
    return watch;
  }

  /** Ends the watch (idempotent). A poll still outstanding is left to its own timeout; its answer is ignored. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async watch(): Promise<void> {
    const { client, socket } = this;
    const { startedAt, setupTimeoutMs, idleTimeoutMs } = this.options;
    const pollMs = Math.max(10, Math.min(1000, Math.floor(idleTimeoutMs / 4)));
    while (!this.stopped && !client.closed) {
      let m: MigrationInfo | undefined;
      try {
        m = await queryMigrate(client, Math.max(idleTimeoutMs, 1000));
      } catch {
        m = undefined; // no answer: no sign of progress (the idle bound decides), ask again
      }
      if (this.stopped) return;
      if (m?.status === 'setup') {
        if (performance.now() - startedAt > setupTimeoutMs) {
          socket.interrupt(new VmpmError(`QEMU's background snapshot was still setting up after ${Math.round(setupTimeoutMs / 1000)} s (query-migrate status setup, nothing on the stream)`));
          return;
        }
        socket.alive();
      } else if (m !== undefined && migrationGaveUp(m)) {
        socket.interrupt(new MigrationEndedError(describeMigrationEnd(m)));
        return;
      } else if (m !== undefined) {
        return; // past its setup: from now on only data shows progress
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
