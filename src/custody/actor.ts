import { hostname, userInfo } from 'node:os';
import { basename } from 'node:path';
import type { CustodyActor, SourceBundle } from '../bundle';
import type { BundleReader } from '../bundle';
import { VMPM_VERSION } from '../version';

/** user@host of whoever runs this vmpm (SUDO_USER first: the person, not root, when run with sudo). */
export function currentActor(): CustodyActor {
  let user = process.env.SUDO_USER ?? '';
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
    }
  }
  return { by: `${user}@${hostname()}`, vmpmVersion: VMPM_VERSION, at: new Date().toISOString() };
}

/** The source bundle's identity: its name, whole-file SHA-256 (streamed) and size. */
export async function sourceOf(reader: BundleReader): Promise<SourceBundle> {
  return { file: basename(reader.path), sha256: await reader.sha256(), size: reader.fileSize };
}
