import { createWriteStream, existsSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { VmpmError, UsageError } from '../../util/errors';

/**
 * Opens `-o OUT` for writing. An existing file is refused unless --force (never clobber evidence by
 * accident); a directory is always refused. The file is created with mode 0600 (memory is sensitive).
 */
export async function openOutput(path: string, force: boolean): Promise<NodeJS.WritableStream & { close(): void }> {
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new UsageError(`-o ${path}: is a directory; give a file name`);
    if (!force) throw new VmpmError(`-o ${path}: file exists; use --force to overwrite it`);
  }
  const out = createWriteStream(path, { mode: 0o600, flags: 'w' });
  await Promise.race([
    once(out, 'open'),
    once(out, 'error').then(([err]) => {
      throw new VmpmError(`-o ${path}: cannot write: ${(err as Error).message}`);
    }),
  ]);
  return out;
}

/** Writes a chunk honouring backpressure. */
export async function writeChunk(out: NodeJS.WritableStream, chunk: Buffer | string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

export async function closeOutput(out: NodeJS.WritableStream): Promise<void> {
  const done = once(out, 'finish');
  out.end();
  await done;
}

/** Writes text to -o OUT (with --force semantics) or stdout. */
export async function writeTextOutput(text: string, path: string | undefined, force: boolean): Promise<void> {
  if (path === undefined) {
    process.stdout.write(text);
    return;
  }
  const out = await openOutput(path, force);
  await writeChunk(out, text);
  await closeOutput(out);
}
