/** Shared plumbing for capture tests: a QEMU + client pair that is always cleaned up, temp dirs, bundles. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BundleReader } from '../../src/bundle';
import type { LaunchedQemu } from '../../src/guest';
import { QmpClient } from '../../src/qmp';

/** Runs `body` with a started QEMU and a connected client; QEMU is killed and the temp dir removed even on failure. */
export async function withGuest(
  launch: () => Promise<LaunchedQemu>,
  body: (ctx: { qemu: LaunchedQemu; client: QmpClient; dir: string }) => Promise<void>,
  allow: string[] = ['cont'],
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-capture-test-'));
  const qemu = await launch();
  let client: QmpClient | undefined;
  try {
    client = await QmpClient.connect(qemu.endpoint, { allow, connectTimeoutMs: 10_000 });
    await body({ qemu, client, dir });
  } finally {
    await client?.close().catch(() => undefined);
    await qemu.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `cont` a -S guest and wait for the event it is built to produce. */
export async function runUntil(client: QmpClient, event: string, timeoutMs = 10_000): Promise<void> {
  await client.execute('cont');
  await client.waitForEvent(event, { timeoutMs });
}

export async function withBundle<T>(path: string, body: (reader: BundleReader) => Promise<T>): Promise<T> {
  const reader = await BundleReader.open(path);
  try {
    return await body(reader);
  } finally {
    await reader.close();
  }
}

export async function status(client: QmpClient): Promise<{ status: string; running: boolean }> {
  const s = await client.execute<{ status: string; running: boolean }>('query-status');
  return { status: s.status, running: s.running };
}
