/**
 * Who a monitor belongs to (name and UUID, asked once per connection) and where an incident's
 * bundle goes. Bundle names sort by time and say what happened (the event name keeps its underscore):
 * vm1-20261129T140102.123Z-guest_panicked.vmpm
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { QmpClient } from '../qmp';

export interface VmIdentity {
  name: string | null;
  /** null when QEMU runs without -uuid (it then reports the all-zero UUID, which identifies nothing). */
  uuid: string | null;
}

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

export async function queryIdentity(client: QmpClient): Promise<VmIdentity> {
  const [name, uuid] = await Promise.all([
    client.execute<{ name?: string }>('query-name'),
    client.execute<{ UUID: string }>('query-uuid'),
  ]);
  return { name: name.name ?? null, uuid: uuid.UUID && uuid.UUID !== NIL_UUID ? uuid.UUID : null };
}

/** A short label for logs: the VM name, else its UUID, else the endpoint. */
export function vmLabel(endpoint: string, id: VmIdentity | undefined): string {
  return id?.name ?? id?.uuid ?? endpoint;
}

/** A fresh, non-existing bundle path in outDir for an incident that began at `at`. */
export function incidentBundlePath(outDir: string, endpoint: string, id: VmIdentity | undefined, event: string, at: Date): string {
  const who = slug(id?.name ?? id?.uuid ?? endpoint.replace(/^(unix|tcp):/, '').split('/').pop() ?? 'vm');
  const when = at.toISOString().replace(/[-:]/g, '');
  const base = `${who}-${when}-${slug(event.toLowerCase())}`;
  let path = join(outDir, `${base}.vmpm`);
  for (let n = 2; existsSync(path); n++) path = join(outDir, `${base}-${n}.vmpm`);
  return path;
}

function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'vm';
}
