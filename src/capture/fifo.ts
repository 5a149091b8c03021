/**
 * Named pipes QEMU writes guest memory into, so RAM streams straight into the bundle and never lands
 * on disk as a raw copy.
 *
 * QEMU `fopen()`s the path on its main thread: if nobody has the FIFO open for reading, the whole main
 * loop (QMP included) blocks until someone does. So the reader's open is started BEFORE the command is
 * sent, and if QEMU never opens its end (the command failed, or QEMU died), the pending open is released
 * by briefly opening the write end ourselves, which turns it into an immediate end-of-file.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VmpmError, describeError } from '../util/errors';

const execFileAsync = promisify(execFile);

/** Bytes per read from the FIFO: big enough for throughput, small enough to keep memory flat. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** A private 0700 directory for a capture's FIFOs; `remove()` deletes it and everything in it. */
export interface FifoDir {
  path: string;
  remove(): Promise<void>;
}

export async function createFifoDir(parent: string = tmpdir()): Promise<FifoDir> {
  const path = await mkdtemp(join(parent, 'vmpm-fifo-'));
  let removing: Promise<void> | undefined;
  return { path, remove: () => (removing ??= rm(path, { recursive: true, force: true })) };
}

/** Node has no mkfifo(2) binding; coreutils' mkfifo is on every system QEMU runs on. */
export async function makeFifo(path: string): Promise<void> {
  try {
    await execFileAsync('mkfifo', ['-m', '0600', path]);
  } catch (err) {
    throw new VmpmError(`cannot create FIFO ${path}: ${describeError(err)}`, { cause: err });
  }
}

export interface FifoReaderOptions {
  /** How long QEMU may take to open its end once the command is sent; default 10 s. */
  openTimeoutMs?: number;
  /** Called with the running byte count after every read. */
  onBytes?: (total: number) => void;
}

/**
 * The read end of one FIFO. Construct it (which starts the blocking open in libuv's thread pool)
 * before sending the QMP command that makes QEMU open the write end.
 */
export class FifoReader {
  readonly path: string;
  private readonly handle: Promise<FileHandle>;
  private readonly onBytes: ((total: number) => void) | undefined;
  private readonly openTimeoutMs: number;
  private openedByQemu = false;
  private released = false;
  private closed = false;
  private fileHandle: FileHandle | undefined;
  private total = 0;

  constructor(path: string, options: FifoReaderOptions = {}) {
    this.path = path;
    this.onBytes = options.onBytes;
    this.openTimeoutMs = options.openTimeoutMs ?? 10_000;
    this.handle = open(path, 'r');
    this.handle.then(
      (fh) => {
        this.fileHandle = fh;
        if (!this.released) this.openedByQemu = true;
      },
      () => undefined,
    );
  }

  get bytesRead(): number {
    return this.total;
  }

  /**
   * Releases a reader whose writer will never come (the command failed): our own momentary writer
   * completes the pending open, and the reader then sees end-of-file.
   */
  async release(): Promise<void> {
    if (this.openedByQemu || this.released) return;
    this.released = true;
    try {
      const writer = await open(this.path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      await writer.close();
    } catch {
      // ENXIO: the reader is not waiting any more (already opened or gone); nothing to release.
    }
  }

  /** Waits until the writer opened its end; a bounded wait, after which the FIFO is released. */
  private async waitOpen(): Promise<FileHandle> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.openTimeoutMs);
    });
    const winner = await Promise.race([this.handle, timeout]);
    clearTimeout(timer);
    if (winner === 'timeout') {
      await this.release();
      await this.close();
      throw new VmpmError(`QEMU did not open the memory FIFO ${this.path} within ${this.openTimeoutMs} ms`);
    }
    if (this.released && !this.openedByQemu) {
      await this.close();
      throw new VmpmError(`QEMU never opened the memory FIFO ${this.path}`);
    }
    return winner;
  }

  /**
   * The FIFO's bytes in chunks until QEMU closes its end. Each chunk is a fresh buffer the consumer owns.
   * The next read is issued before a chunk is handed out, so the pipe (64 KiB) keeps draining while
   * the consumer hashes and compresses; at most one read is in flight, so order is preserved.
   */
  async *chunks(): AsyncGenerator<Buffer> {
    const fh = await this.waitOpen();
    const readOne = async (): Promise<Buffer> => {
      const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      return buf.subarray(0, bytesRead);
    };
    let pending: Promise<Buffer> | undefined;
    const startRead = (): Promise<Buffer> => {
      const p = readOne();
      // Observed by the next await; until then (consumer busy, or gone after an abort) it must not be "unhandled".
      p.catch(() => undefined);
      return p;
    };
    try {
      pending = startRead();
      for (;;) {
        const chunk = await pending;
        pending = undefined;
        if (chunk.length === 0) return;
        pending = startRead();
        this.total += chunk.length;
        this.onBytes?.(this.total);
        yield chunk;
      }
    } finally {
      // A read still in flight must finish before the handle can close.
      await pending?.catch(() => undefined);
      await this.close();
    }
  }

  /**
   * Closes the read end. If QEMU is still writing, its next write fails with EPIPE (QEMU ignores
   * SIGPIPE) and its dump ends with an error instead of blocking forever on a full pipe.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.openedByQemu && !this.fileHandle) await this.release();
    const fh = this.fileHandle ?? (await this.handle.catch(() => undefined));
    await fh?.close().catch(() => undefined);
  }
}
