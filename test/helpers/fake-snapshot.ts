import { connect, type Socket } from 'node:net';
import type { FaultHook } from './fake-qemu';
import type { FakeConnection } from './fake-qmp';

/**
 * QEMU 7.2's background snapshot as the fake QEMU's fault hook (fake-qemu.ts): the migration
 * capabilities and parameters a capture reads and sets, `migrate` to a unix socket, query-migrate's
 * status, migrate_cancel. After `migrate` it connects at once and then, like QEMU, sends nothing
 * while its setup lasts (`setupMs`, query-migrate status `setup`; Infinity: a setup that never ends),
 * then STOP, the whole `stream`, RESUME, and `completed` once the stream is written.
 */
export interface FakeSnapshotOptions {
  setupMs: number;
  stream: Buffer;
  /** QEMU gives up during its setup after this long (status `failed`, with `errorDesc`). */
  failAfterMs?: number;
  errorDesc?: string;
  /** On that failure the stream connection stays open (the reader must learn it from query-migrate). */
  keepStreamOnFail?: boolean;
}

export interface FakeSnapshotState {
  /** query-migrate's status; undefined before any migration (QEMU then answers `{}`). */
  status: string | undefined;
  backgroundSnapshot: boolean;
  maxBandwidth: number;
  /** query-migrate answers given while the status was `setup`. */
  setupPolls: number;
  /** The stream connection was closed by the reader before QEMU finished writing. */
  readerClosed: boolean;
}

export function fakeSnapshot(options: FakeSnapshotOptions): { state: FakeSnapshotState; fault: FaultHook } {
  const state: FakeSnapshotState = { status: undefined, backgroundSnapshot: false, maxBandwidth: 134217728, setupPolls: 0, readerClosed: false };
  let stream: Socket | undefined;
  let setupTimer: NodeJS.Timeout | undefined;
  const run = (uri: string, conn: FakeConnection, qemu: { status: string }): void => {
    stream = connect(uri.replace(/^unix:/, ''));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (state.status === 'setup' || state.status === 'active') state.readerClosed = true;
    });
    if (options.failAfterMs !== undefined) {
      setupTimer = setTimeout(() => {
        state.status = 'failed';
        if (!options.keepStreamOnFail) stream!.destroy();
      }, options.failAfterMs);
      return;
    }
    if (!Number.isFinite(options.setupMs)) return;
    setupTimer = setTimeout(() => {
      state.status = 'active';
      qemu.status = 'paused';
      conn.event('STOP');
      stream!.write(options.stream, () => {
        qemu.status = 'running';
        conn.event('RESUME');
        stream!.end(() => {
          if (state.status === 'active') state.status = 'completed';
        });
      });
    }, options.setupMs);
  };
  const fault: FaultHook = (cmd, conn, qemu, step) => {
    switch (step) {
      case 'query-migrate-capabilities':
        conn.reply(cmd, [
          { capability: 'xbzrle', state: false },
          { capability: 'background-snapshot', state: state.backgroundSnapshot },
        ]);
        return true;
      case 'query-migrate-parameters':
        conn.reply(cmd, { 'max-bandwidth': state.maxBandwidth });
        return true;
      case 'migrate-set-capabilities': {
        const caps = (cmd.arguments?.capabilities ?? []) as Array<{ capability: string; state: boolean }>;
        for (const c of caps) if (c.capability === 'background-snapshot') state.backgroundSnapshot = c.state;
        conn.reply(cmd, {});
        return true;
      }
      case 'migrate-set-parameters':
        if (typeof cmd.arguments?.['max-bandwidth'] === 'number') state.maxBandwidth = cmd.arguments['max-bandwidth'];
        conn.reply(cmd, {});
        return true;
      case 'qom-list':
        conn.reply(cmd, []);
        return true;
      case 'query-migrate':
        if (state.status === 'setup') state.setupPolls++;
        conn.reply(cmd, state.status === undefined ? {} : {
          status: state.status,
          ...(state.status === 'completed' ? { downtime: 3, 'setup-time': options.setupMs, 'total-time': options.setupMs + 10 } : {}),
          ...(state.status === 'failed' && options.errorDesc ? { 'error-desc': options.errorDesc } : {}),
        });
        return true;
      case 'migrate':
        state.status = 'setup';
        conn.reply(cmd, {});
        run(String(cmd.arguments?.uri), conn, qemu);
        return true;
      case 'migrate_cancel':
        clearTimeout(setupTimer);
        if (state.status === 'setup' || state.status === 'active') state.status = 'cancelled';
        stream?.destroy();
        conn.reply(cmd, {});
        return true;
      default:
        return false;
    }
  };
  return { state, fault };
}
