/**
 * QEMU's migration status (query-migrate), as the background snapshot reads it: one reply type, the
 * statuses that end a migration, and the one line that says QEMU gave up.
 */
import type { QmpClient } from '../qmp';
import { VmpmError } from '../util/errors';

/** The fields of query-migrate's reply vmpm reads (QEMU answers `{}` before any migration). */
export interface MigrationInfo {
  status?: string;
  /** ms the guest was stopped (completed migrations). */
  downtime?: number;
  /** ms QEMU spent setting up before its own stop (completed migrations). */
  'setup-time'?: number;
  'error-desc'?: string;
}

/** QEMU gave up on the migration (status failed or cancelled): the message is QEMU's reason. */
export class MigrationEndedError extends VmpmError {}

export function queryMigrate(client: QmpClient, timeoutMs?: number): Promise<MigrationInfo> {
  return client.execute<MigrationInfo>('query-migrate', undefined, timeoutMs === undefined ? {} : { timeoutMs });
}

/** QEMU ended the migration without completing it. */
export function migrationGaveUp(m: MigrationInfo): boolean {
  return m.status === 'failed' || m.status === 'cancelled';
}

/** No migration runs (none yet, or it is over, however it ended). */
export function migrationOver(m: MigrationInfo): boolean {
  return m.status === undefined || m.status === 'none' || m.status === 'completed' || migrationGaveUp(m);
}

/** "QEMU's background snapshot failed: <QEMU's error-desc>" (or cancelled), for a migration QEMU gave up. */
export function describeMigrationEnd(m: MigrationInfo): string {
  return `QEMU's background snapshot ${m.status ?? 'ended'}${m['error-desc'] ? `: ${m['error-desc']}` : ''}`;
}
