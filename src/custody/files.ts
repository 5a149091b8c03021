/**
 * File plumbing shared by slim, redact, seal and sign: read an input in large chunks with errors
 * in words, and write an output through a temporary file that only becomes visible, by rename,
 * once every byte was produced (a failure anywhere leaves no output at all).
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { FileSink } from '../bundle/sink';
import { fsErrorText } from '../bundle/fs-errors';
import { constants } from 'node:os';
import { VmpmError } from '../util/errors';

const READ_CHUNK = 1 << 20;

/** Checks that `path` is a readable regular file and returns its size. */
export async function inputSize(path: string, what = 'input'): Promise<number> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch (err) {
    throw new VmpmError(`cannot read ${what} ${path}: ${fsErrorText(err)}`, { cause: err });
  }
  if (!st.isFile()) throw new VmpmError(`${what} ${path} is not a regular file`);
  return st.size;
}

/** The file's bytes in 1 MiB chunks; read errors become one-line VmpmErrors. */
export async function* readChunks(path: string, start = 0, end?: number): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK, start, ...(end === undefined ? {} : { end: end - 1 }) });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (err) {
    throw new VmpmError(`cannot read ${path}: ${fsErrorText(err)}`, { cause: err });
  } finally {
    stream.destroy();
  }
}

/**
 * Writes everything `source` yields to `target` via a temporary file, renamed into place only after
 * the source ended without error. An existing target is refused unless `force`.
 */
export async function writeAtomically(target: string, source: AsyncIterable<Buffer> | Iterable<Buffer>, force: boolean, signal?: AbortSignal): Promise<number> {
  const sink = await FileSink.create(target, force);
  let bytes = 0;
  try {
    for await (const chunk of source) {
      if (signal?.aborted) throw interrupted(signal);
      await sink.write(chunk);
      bytes += chunk.length;
    }
  } catch (err) {
    await sink.abort();
    throw err;
  }
  await sink.finish();
  return bytes;
}

/** The error for a run stopped by Ctrl-C/SIGTERM: exit code 128 + signal number, as a shell expects. */
export function interrupted(signal: AbortSignal): VmpmError {
  const name = typeof signal.reason === 'string' ? signal.reason : 'SIGINT';
  const n = (constants.signals as Record<string, number | undefined>)[name];
  return new VmpmError(`interrupted by ${name}; no output written`, { exitCode: n === undefined ? 1 : 128 + n });
}
