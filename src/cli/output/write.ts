import { createWriteStream, existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { VmpmError, UsageError, describeError } from '../../util/errors';

/**
 * Refuses an output path before any work is done: a directory always (usage error); an existing file
 * unless `force` (never clobber evidence by accident); a parent that is missing or not a directory
 * (so a long capture or demo does not fail only at the very end). `flag` names the option in messages.
 */
export function checkOutputPath(path: string, force: boolean, flag = '-o'): void {
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new UsageError(`${flag} ${path}: is a directory; give a file name`);
    if (!force) throw new VmpmError(`${path} already exists (use --force to overwrite it)`);
    return;
  }
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new VmpmError(`${flag} ${path}: directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new VmpmError(`${flag} ${path}: ${dir} is not a directory`);
}

/**
 * Opens `-o OUT` for writing, after checkOutputPath. The file is created with mode 0600 (memory is
 * sensitive). Any failure to create it (permissions, read-only file system) is one VmpmError line.
 */
export async function openOutput(path: string, force: boolean): Promise<NodeJS.WritableStream & { close(): void }> {
  checkOutputPath(path, force);
  const out = createWriteStream(path, { mode: 0o600, flags: 'w' });
  try {
    // once() rejects with the stream's own error when 'error' comes first.
    await once(out, 'open');
  } catch (err) {
    throw new VmpmError(`-o ${path}: cannot write: ${describeError(err)}`, { cause: err });
  }
  return out;
}

/** Closes a half-written -o file and deletes it, so a failed or interrupted command leaves no partial output. */
export async function discardOutput(out: NodeJS.WritableStream & { close(): void }, path: string): Promise<void> {
  out.close();
  await rm(path, { force: true }).catch(() => undefined);
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
  try {
    await writeChunk(out, text);
    await closeOutput(out);
  } catch (err) {
    await discardOutput(out, path);
    throw new VmpmError(`-o ${path}: cannot write: ${describeError(err)}`, { cause: err });
  }
}
