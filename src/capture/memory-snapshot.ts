/**
 * Memory method `snapshot`: QEMU's background snapshot (the `background-snapshot` migration
 * capability, QEMU >= 6.0) streamed over a unix socket vmpm listens on and parsed straight into the
 * bundle at guest-physical addresses (formats/migration, migration-placement.ts).
 *
 * Everything that can be made ready while the guest runs is (SnapshotPrep: the migration settings and
 * the socket). x86: `migrate` is sent to the running guest; QEMU prepares while it runs (7.2 reads
 * every guest page then: `setupMs`), stops it, saves device state (the vCPU registers:
 * stream-registers.ts), write-protects guest RAM and RESUMES it, milliseconds later. QEMU copies
 * each page out before the guest may change it, so every page and the registers are of QEMU's stop.
 * Other targets (aarch64: no decoder for its CPU state): vmpm stops the guest and reads `info
 * registers` first, with `migrate` right behind, and QEMU's setup then lies inside the pause.
 *
 * Failure, a signal or a dead QEMU: the socket is closed (QEMU then fails the migration itself),
 * `migrate_cancel` is sent if it does not (see cancel()), and the capability (and bandwidth limit)
 * vmpm changed are put back as found. A guest the cancelled snapshot left
 * paused is resumed by the capture's failure path (it was vmpm's stop).
 */
import { join } from 'node:path';
import { PAGE_SIZE, type PlacedRangesWriter } from '../bundle';
import { decodeDeviceState, MigrationStreamParser, x86CpusFromDeviceState, type MigrationStreamEnd, type VmstateCpu } from '../formats/migration';
import type { QmpClient } from '../qmp';
import { VmpmError, describeError } from '../util/errors';
import type { ActionLog } from './actions';
import { MigrationPlacement } from './migration-placement';
import { MigrationSocket } from './migration-socket';
import { SetupWatch, defaultSetupTimeoutMs } from './snapshot-setup-watch';
import { MigrationEndedError, describeMigrationEnd, migrationGaveUp, migrationOver, queryMigrate } from './migration-status';
import { throwIfAborted, type CapturedRange, type MemoryCaptureContext, type MemoryCaptureResult } from './memory-common';

/** Bytes per second: far above what any host moves, i.e. no limit (QEMU's default is 128 MiB/s). */
const UNLIMITED_BANDWIDTH = 1n << 40n;
const SETTLE_TIMEOUT_MS = 30_000;

export interface SnapshotInfo {
  /** QEMU's own measure of the pause (query-migrate `downtime`, ms). */
  downtimeMs: number | null;
  /** QEMU's setup before its own stop (query-migrate `setup-time`, ms); inside vmpm's pause. */
  setupMs: number | null;
  /** Bytes of migration stream read. */
  streamBytes: number;
  /** Pages of RAM blocks the memory map does not map as RAM (firmware, ROMs, VGA hole). */
  unmappedPages: number;
  machine: string;
  /** vCPU registers from the stream's device state (x86), when it could be decoded. */
  vmstateCpus?: VmstateCpu[];
  /** Why the device state could not be decoded, when it could not. */
  vmstateError?: string;
}

interface Found {
  backgroundSnapshot: boolean;
  maxBandwidth: bigint | undefined;
}

/**
 * The migration settings a snapshot needs, set BEFORE vmpm stops the guest (they change nothing
 * while no migration runs), so the pause holds only the register reads and QEMU's own setup.
 * `restore()` puts back what was found; it never throws, may be called any number of times, and must
 * be called whatever happens (the capture's failure path does, and captureWithSnapshot does).
 */
export class SnapshotSettings {
  private restored: Promise<void> | undefined;
  private constructor(
    private readonly client: QmpClient,
    private readonly actions: ActionLog,
    private readonly found: Found,
  ) {}

  static async apply(client: QmpClient, actions: ActionLog, warnings: string[]): Promise<SnapshotSettings> {
    const found = await readSettings(client);
    const settings = new SnapshotSettings(client, actions, found);
    try {
      // "(was ...)" lets a claim (claim.ts) name the command that puts it back.
      await actions.run('migrate-set-capabilities', `background-snapshot on (was ${found.backgroundSnapshot ? 'on' : 'off'})`, () =>
        client.execute('migrate-set-capabilities', { capabilities: [{ capability: 'background-snapshot', state: true }] }),
      );
      if (found.maxBandwidth !== undefined && found.maxBandwidth < UNLIMITED_BANDWIDTH) {
        await actions.run('migrate-set-parameters', `max-bandwidth unlimited (was ${found.maxBandwidth}; QEMU would throttle the snapshot)`, () =>
          client.execute('migrate-set-parameters', { 'max-bandwidth': UNLIMITED_BANDWIDTH }),
        );
      }
    } catch (err) {
      await settings.restore(warnings);
      throw err;
    }
    return settings;
  }

  restore(warnings: string[]): Promise<void> {
    this.restored ??= restoreSettings(this.client, this.actions, this.found, warnings);
    return this.restored;
  }
}

/**
 * One background snapshot, from before vmpm stops the guest to its end: the settings applied and the
 * socket listening (open(), while the guest still runs), `migrate` sent (start(), queued right
 * behind vmpm's `stop` and register read: QEMU runs a session's commands in order, so no round trip
 * lies between them), and release(), which must be called whatever happens: it ends a migration
 * that did not complete (see cancel()), closes the socket and restores the settings. It never
 * throws and may be called any number of times.
 */
export class SnapshotPrep {
  private migrating: Promise<unknown> | undefined;
  private sentAt: number | undefined;
  private completed = false;
  private resumed = false;
  private unsubscribe: (() => void) | undefined;
  private released: Promise<void> | undefined;

  private constructor(
    private readonly client: QmpClient,
    private readonly actions: ActionLog,
    readonly settings: SnapshotSettings,
    readonly socket: MigrationSocket,
  ) {}

  static async open(
    client: QmpClient,
    actions: ActionLog,
    warnings: string[],
    dir: string,
    options: { connectTimeoutMs?: number; idleTimeoutMs?: number },
  ): Promise<SnapshotPrep> {
    const settings = await SnapshotSettings.apply(client, actions, warnings);
    try {
      return new SnapshotPrep(client, actions, settings, await MigrationSocket.listen(join(dir, 'migration.sock'), options));
    } catch (err) {
      await settings.restore(warnings);
      throw err;
    }
  }

  /** performance.now() when `migrate` was sent; undefined before start(). */
  get startedAt(): number | undefined {
    return this.sentAt;
  }

  /** Sends `migrate` now (once); resolves with its reply. */
  start(): Promise<unknown> {
    if (this.migrating === undefined) {
      this.unsubscribe = this.client.onEvent((e) => {
        if (e.event === 'RESUME') this.resumed = true;
      });
      const { client, socket } = this;
      this.sentAt = performance.now();
      this.migrating = this.actions.run('migrate', `background snapshot into ${socket.uri} (vmpm reads it; nothing on disk)`, () => client.execute('migrate', { uri: socket.uri }));
    }
    return this.migrating;
  }

  /** The stream was read to its end and QEMU reported the migration completed. */
  markCompleted(): void {
    this.completed = true;
  }

  release(warnings: string[]): Promise<void> {
    this.released ??= this.end(warnings);
    return this.released;
  }

  private async end(warnings: string[]): Promise<void> {
    if (this.migrating !== undefined && !this.completed) {
      await this.migrating.catch(() => undefined);
      await this.socket.drainThenClose(pastSetup(this.client, () => this.resumed), 10_000);
      await cancel(this.client, this.actions, warnings);
    }
    this.unsubscribe?.();
    this.socket.close();
    await this.settings.restore(warnings);
  }
}

export async function captureWithSnapshot(ctx: MemoryCaptureContext, prep: SnapshotPrep): Promise<MemoryCaptureResult> {
  const { client } = ctx;
  const { socket } = prep;
  const onAbort = (): void => socket.interrupt(new VmpmError('capture interrupted'));
  ctx.signal?.addEventListener('abort', onAbort);
  let watch: SetupWatch | undefined;
  try {
    throwIfAborted(ctx.signal);
    await prep.start();
    const startedAt = prep.startedAt!; // set by start()
    const total = ctx.plan.reduce((s, r) => s + Number(r.end - r.start), 0);
    // QEMU's setup sends nothing on the stream: its silence then is not a stall (snapshot-setup-watch.ts).
    const setupTimeoutMs = ctx.snapshotSetupTimeoutMs ?? defaultSetupTimeoutMs(total);
    watch = SetupWatch.start(client, socket, { startedAt, setupTimeoutMs, idleTimeoutMs: socket.idleTimeoutMs });
    // While QEMU sets up, not before: reserving a 4 GiB guest's page index takes tens of
    // milliseconds under load; the stream waits in the socket meanwhile.
    const placed = ctx.writer.beginPlacedRanges(ctx.plan.map((r) => ({ start: r.start, length: r.end - r.start, name: r.name })));
    const placement = new MigrationPlacement(ctx.plan, placed);
    const parser = new MigrationStreamParser();
    // A stream cut short because QEMU gave up is reported with QEMU's reason, not as a truncated stream.
    const { streamBytes, end } = await readStream(ctx, socket, parser, placement, placed, total).catch(async (err: unknown) => {
      throw ctx.signal?.aborted ? err : await withQemuReason(client, err);
    });
    const stats = await placed.end();
    const { downtimeMs, setupMs } = await waitForCompletion(client);
    prep.markCompleted();
    const snapshot: SnapshotInfo = { downtimeMs, setupMs, streamBytes, unmappedPages: placement.unmappedPages, machine: end.machine };
    try {
      snapshot.vmstateCpus = x86CpusFromDeviceState(decodeDeviceState(end.tail));
    } catch (err) {
      snapshot.vmstateError = describeError(err);
      ctx.warnings.push(`device state in the snapshot stream not decoded: ${snapshot.vmstateError}`);
    }
    const ranges: CapturedRange[] = stats.map((s, i) => ({ ...s, name: placed.layout[i]!.name ?? '' }));
    return { ranges, snapshot };
  } finally {
    watch?.stop();
    ctx.signal?.removeEventListener('abort', onAbort);
    await prep.release(ctx.warnings);
  }
}

/** The stream into the bundle, page by page, to its end. */
async function readStream(
  ctx: MemoryCaptureContext,
  socket: MigrationSocket,
  parser: MigrationStreamParser,
  placement: MigrationPlacement,
  placed: PlacedRangesWriter,
  total: number,
): Promise<{ streamBytes: number; end: MigrationStreamEnd }> {
  let pages = 0;
  let streamBytes = 0;
  for await (const chunk of socket.chunks()) {
    streamBytes += chunk.length;
    for (const rec of parser.push(chunk)) {
      if (rec.kind === 'blocks') placement.checkBlocks(rec.blocks);
      else {
        pages++;
        const full = rec.kind === 'page' ? placement.page(rec.block, rec.offset, rec.data, 0, 0) : placement.page(rec.block, rec.offset, undefined, 0, rec.fill);
        if (full) await placed.flush();
      }
    }
    ctx.onProgress?.(Math.min(total, pages * PAGE_SIZE), total);
  }
  throwIfAborted(ctx.signal);
  return { streamBytes, end: parser.end() };
}

/**
 * `err` or, when QEMU reports the migration failed or cancelled, QEMU's own reason (with `err`
 * beside it). An error that already is QEMU's reason (the setup watch's) is returned as it is.
 */
async function withQemuReason(client: QmpClient, err: unknown): Promise<unknown> {
  if (err instanceof MigrationEndedError || client.closed) return err;
  try {
    const m = await queryMigrate(client, 5000);
    if (migrationGaveUp(m)) return new MigrationEndedError(`${describeMigrationEnd(m)} (the stream: ${describeError(err)})`);
  } catch {
    // No answer: the stream's own error is all there is.
  }
  return err;
}

async function readSettings(client: QmpClient): Promise<Found> {
  const caps = await client.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities');
  const params = await client.execute<Record<string, unknown>>('query-migrate-parameters');
  const bw = params['max-bandwidth'];
  return {
    backgroundSnapshot: caps.some((c) => c.capability === 'background-snapshot' && c.state),
    maxBandwidth: typeof bw === 'number' || typeof bw === 'bigint' ? BigInt(bw) : undefined,
  };
}

/** Polls query-migrate until the migration is over; returns QEMU's downtime and setup time, throws unless completed. */
async function waitForCompletion(client: QmpClient): Promise<{ downtimeMs: number | null; setupMs: number | null }> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const m = await queryMigrate(client);
    if (m.status === 'completed') {
      const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
      return { downtimeMs: num(m.downtime), setupMs: num(m['setup-time']) };
    }
    if (migrationGaveUp(m)) throw new MigrationEndedError(describeMigrationEnd(m));
    if (performance.now() > deadline) throw new VmpmError(`the background snapshot did not complete within ${SETTLE_TIMEOUT_MS} ms after its stream ended (status ${m.status ?? '?'})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Resolves once breaking the stream is safe: QEMU resumed the guest (its setup is over) or the
 * migration is over (it may still be connecting right after `migrate`: not safe yet). Polls query-migrate meanwhile (a dead QEMU ends it at once).
 */
async function pastSetup(client: QmpClient, done: () => boolean): Promise<void> {
  while (!done() && !client.closed) {
    if (migrationOver(await queryMigrate(client, 5000))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Ends a snapshot that must not go on. The stream socket is already closed, so QEMU's next write
 * fails and it abandons the migration by itself ("Unable to write to socket"); that is waited for
 * first, because QEMU 7.2 can deadlock its main loop when `migrate_cancel` arrives while a background
 * snapshot is still setting up (measured: `migrate`, then `migrate_cancel` at once, and the monitor
 * never answers again). Only a migration still active after that gets `migrate_cancel`. Never throws.
 */
async function cancel(client: QmpClient, actions: ActionLog, warnings: string[]): Promise<void> {
  if (client.closed) return;
  try {
    if (await settled(client, 3000)) return;
    await actions.run('migrate_cancel', 'the capture failed or was interrupted', () => client.execute('migrate_cancel', undefined, { timeoutMs: 5000 }));
    if (!(await settled(client, 5000))) warnings.push('the cancelled background snapshot had not stopped after 5 s');
  } catch (err) {
    warnings.push(`could not cancel the background snapshot: ${describeError(err)}`);
  }
}

/** True once query-migrate reports a migration that is over, within `ms`. */
async function settled(client: QmpClient, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (migrationOver(await queryMigrate(client, 5000))) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Puts back the capability and bandwidth limit vmpm found. Never throws (a warning says what failed). */
async function restoreSettings(client: QmpClient, actions: ActionLog, found: Found, warnings: string[]): Promise<void> {
  if (client.closed) return;
  try {
    const caps = await client.execute<Array<{ capability: string; state: boolean }>>('query-migrate-capabilities', undefined, { timeoutMs: 5000 });
    const now = caps.some((c) => c.capability === 'background-snapshot' && c.state);
    if (now !== found.backgroundSnapshot) {
      await actions.run('migrate-set-capabilities', `background-snapshot back to ${found.backgroundSnapshot ? 'on' : 'off'}`, () =>
        client.execute('migrate-set-capabilities', { capabilities: [{ capability: 'background-snapshot', state: found.backgroundSnapshot }] }, { timeoutMs: 5000 }),
      );
    }
    const params = await client.execute<Record<string, unknown>>('query-migrate-parameters', undefined, { timeoutMs: 5000 });
    const bw = params['max-bandwidth'];
    if (found.maxBandwidth !== undefined && (typeof bw === 'number' || typeof bw === 'bigint') && BigInt(bw) !== found.maxBandwidth) {
      const value = found.maxBandwidth;
      await actions.run('migrate-set-parameters', `max-bandwidth back to ${value}`, () =>
        client.execute('migrate-set-parameters', { 'max-bandwidth': value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value }, { timeoutMs: 5000 }),
      );
    }
  } catch (err) {
    warnings.push(`could not restore the migration settings vmpm changed: ${describeError(err)}`);
  }
}
