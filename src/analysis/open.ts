import { BundleReader } from '../bundle';
import { VmpmError, describeError } from '../util/errors';
import type { AnalysisBundle } from './source';

export interface OpenedBundle extends AnalysisBundle {
  close(): Promise<void>;
}

/**
 * Opens a bundle for analysis. Every failure (missing file, not a bundle, truncated, corrupt index)
 * becomes one VmpmError line that names the file.
 */
export async function openBundle(path: string): Promise<OpenedBundle> {
  try {
    return await BundleReader.open(path);
  } catch (err) {
    if (err instanceof VmpmError && err.message.includes(path)) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e && e.code === 'ENOENT') throw new VmpmError(`${path}: no such file`);
    throw new VmpmError(`${path}: ${describeError(err)}`, { cause: err });
  }
}

/** Runs `fn` with an opened bundle and always closes it. */
export async function withBundle<T>(path: string, fn: (b: OpenedBundle) => Promise<T>): Promise<T> {
  const bundle = await openBundle(path);
  try {
    return await fn(bundle);
  } finally {
    await bundle.close();
  }
}

export async function withBundles<T>(a: string, b: string, fn: (a: OpenedBundle, b: OpenedBundle) => Promise<T>): Promise<T> {
  return withBundle(a, (ba) => withBundle(b, (bb) => fn(ba, bb)));
}
