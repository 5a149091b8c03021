/**
 * Where a writer's bytes go: a temporary file renamed into place on success, or a caller's stream
 * (a pipe, stdout). Both are strictly sequential: nothing is ever seeked back to.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VmpmError } from '../util/errors';
import { errnoCode, fsErrorText } from './fs-errors';

export interface Sink {
  write(buf: Buffer): Promise<void>;
  /** Makes the bytes durable and visible; returns the final path for files. */
  finish(): Promise<string | undefined>;
  /** Discards everything written, as far as possible. Idempotent. */
  abort(): Promise<void>;
}

/**
 * Writes to `.<name>.partial-<random>` beside the target (same file system, so the final rename is
 * atomic), mode 0600, and on finish fsyncs the file, puts it in place and fsyncs the directory.
 * Without `overwrite`, the final step is link()+unlink(), which fails instead of replacing a file
 * that appeared in the meantime.
 */
export class FileSink implements Sink {
  private done = false;
  private constructor(
    private readonly target: string,
    private readonly temp: string,
    private readonly fh: fsp.FileHandle,
    private readonly overwrite: boolean,
  ) {}

  static async create(target: string, overwrite: boolean): Promise<FileSink> {
    // lstat, not access(): a dangling symlink at the target is something link() would refuse at the very end.
    const existing = await fsp.lstat(target).catch(() => undefined);
    if (existing && !overwrite) {
      throw new VmpmError(`${target} already exists (refusing to overwrite it; choose another name or allow overwriting)`);
    }
    // Only a file (or a symlink, which rename replaces) can be overwritten; anything else would only
    // fail at finish(), after the whole capture.
    if (existing && !existing.isFile() && !existing.isSymbolicLink()) {
      throw new VmpmError(`cannot write bundle ${target}: it is ${describeFileType(existing)} (only a regular file can be overwritten)`);
    }
    const temp = join(dirname(target), `.${basename(target)}.partial-${randomBytes(6).toString('hex')}`);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(temp, 'wx', 0o600);
    } catch (err) {
      throw new VmpmError(`cannot create bundle ${target} (temporary file ${temp}): ${fsErrorText(err)}`, { cause: err });
    }
    return new FileSink(target, temp, fh, overwrite);
  }

  async write(buf: Buffer): Promise<void> {
    let off = 0;
    try {
      while (off < buf.length) {
        const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
        off += bytesWritten;
      }
    } catch (err) {
      // e.g. ENOSPC mid-capture: say which file, in words (the cause keeps the errno code).
      throw new VmpmError(`cannot write ${this.target}: ${fsErrorText(err)}`, { cause: err });
    }
  }

  async finish(): Promise<string> {
    try {
      await this.fh.sync();
      await this.fh.close();
      if (this.overwrite) {
        await fsp.rename(this.temp, this.target);
      } else {
        try {
          await fsp.link(this.temp, this.target);
        } catch (err) {
          if (errnoCode(err) === 'EEXIST') {
            throw new VmpmError(`${this.target} already exists (it appeared while the bundle was being written; not overwritten)`);
          }
          throw err;
        }
        await fsp.unlink(this.temp);
      }
      this.done = true;
      await syncDirectory(dirname(this.target));
      return this.target;
    } catch (err) {
      await this.abort();
      if (err instanceof VmpmError) throw err;
      throw new VmpmError(`cannot complete ${this.target}: ${fsErrorText(err)}`, { cause: err });
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => undefined);
    await fsp.unlink(this.temp).catch(() => undefined);
  }
}

function describeFileType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'a special file';
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename durable; some file systems refuse fsync on directories, which is harmless.
  const fh = await fsp.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => undefined);
  await fh.close().catch(() => undefined);
}

/**
 * Writes to a caller's stream, honouring backpressure ('drain'). The stream is not ended: the
 * caller owns it (it may be process.stdout).
 */
export class StreamSink implements Sink {
  private error: Error | undefined;
  private aborted = false;
  constructor(private readonly out: NodeJS.WritableStream) {
    out.on('error', (err: Error) => (this.error ??= err));
  }

  write(buf: Buffer): Promise<void> {
    if (this.error) return Promise.reject(new VmpmError(`output stream failed: ${fsErrorText(this.error)}`));
    if (this.aborted) return Promise.reject(new VmpmError('bundle output was aborted'));
    return new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new VmpmError(`output stream failed: ${fsErrorText(err)}`));
      this.out.once('error', onError);
      // Resolve when the chunk is handed over; wait for 'drain' when the stream's buffer is full.
      const ok = this.out.write(buf, (err?: Error | null) => {
        if (err) onError(err);
      });
      const settle = (): void => {
        this.out.removeListener('error', onError);
        resolve();
      };
      if (ok) settle();
      else this.out.once('drain', settle);
    });
  }

  async finish(): Promise<undefined> {
    if (this.error) throw new VmpmError(`output stream failed: ${fsErrorText(this.error)}`);
    // An empty write's callback fires after everything before it has been flushed.
    await new Promise<void>((resolve, reject) =>
      this.out.write(Buffer.alloc(0), (err?: Error | null) => (err ? reject(new VmpmError(`output stream failed: ${fsErrorText(err)}`)) : resolve())),
    );
    return undefined;
  }

  async abort(): Promise<void> {
    this.aborted = true;
  }
}
