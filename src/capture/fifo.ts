/**
 * Named pipes QEMU writes guest memory into, so RAM streams straight into the bundle and never lands
 * on disk as a raw copy.
 *
 * QEMU `fopen()`s the path on its main thread: if nobody has the FIFO open for reading, the whole main
 * loop (QMP included) blocks until someone does. So the read end is opened BEFORE the command is sent,
 * with O_NONBLOCK: the open returns at once whether or not a writer ever comes, so no libuv threadpool
 * thread ever waits in open() (issue 13: a blocking open in the threadpool could not always be
 * released; with more pending opens than threads one stayed blocked for good, its reader's close()
 * never returned and the process could not exit). A writer that never comes is then simply silence,
 * bounded by `openTimeoutMs` until the first byte (QEMU writes as soon as it has opened its end).
 *
 * Reading: QEMU writes 4 KiB at a time and a pipe holds 64 KiB, so a FIFO delivers ~16-64 KiB per
 * read however big the buffer. The descriptor is handed to libuv as a pipe stream (net.Socket):
 * readiness-driven non-blocking reads on the event loop instead of one thread-pool round trip per
 * read; that halves the reader's CPU time (1 GiB through a FIFO: ~1.0 s -> ~0.56 s CPU). Linux
 * reports no hang-up on a FIFO read end until a writer has come and gone, so waiting for readiness
 * before the writer opens is a wait, not an end-of-file.
 *
 * Closing takes the FIFO's name away before it drops the read end. A command may still be queued in
 * QEMU when vmpm gives up (the first-byte bound, an abort): if it later found the FIFO with no reader,
 * its open() would block QEMU's main loop for good (the directory goes only after the cleanup's
 * `cont`, which that blocked QEMU would never answer). Unlinking is not enough: QEMU opens with O_CREAT
 * (`pmemsave` fopen()s "wb", `dump-guest-memory` file: opens O_WRONLY|O_CREAT|O_TRUNC), so it would
 * create a regular file there and write guest RAM to disk. The name is therefore replaced, in one
 * rename, by a symlink to itself: any later open fails with ELOOP, and nothing is created.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants as fsConstants, lstatSync, openSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { VmpmError, describeError } from '../util/errors';
import { ioDeadline, type IoDeadline } from '../util/io-deadline';
import { processStart } from './claim';

const execFileAsync = promisify(execFile);

/** The writer kept the FIFO open but stopped writing. */
export class FifoIdleError extends VmpmError {}

/** A private 0700 directory for a capture's FIFOs; `remove()` deletes it and everything in it. */
export interface FifoDir {
  path: string;
  remove(): Promise<void>;
}

export async function createFifoDir(parent: string = tmpdir()): Promise<FifoDir> {
  // The pid (and its start time, so a reused pid is not taken for us) in the name let a later run tell
  // a directory left by a killed vmpm from one in use (leftovers.ts).
  const start = processStart('self');
  const path = await mkdtemp(join(parent, `vmpm-fifo-${process.pid}-${start === null ? '' : `s${start}-`}`));
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
  /** How long QEMU may take to open its end and write the first byte once the command is sent; default 10 s. */
  openTimeoutMs?: number;
  /** Called with the running byte count after every read. */
  onBytes?: (total: number) => void;
  /**
   * How long the stream may stay silent while we wait for data, default 60 s. Counts only time
   * spent waiting for QEMU (not time the consumer spends on a chunk), so a slow disk is not mistaken
   * for a stalled QEMU; a stopped or wedged QEMU that keeps the FIFO open must not hang the capture.
   */
  idleTimeoutMs?: number;
}

export class FifoReader {
  readonly path: string;
  private readonly onBytes: ((total: number) => void) | undefined;
  private readonly openTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private closed = false;
  /** The open descriptor while nobody else owns it; then the stream that owns it. */
  private fd: number | undefined;
  private openError: unknown;
  private stream: Socket | undefined;
  private total = 0;

  /** Opens the read end (non-blocking: at once, writer or not). Construct it before sending the QMP command that makes QEMU open the write end. */
  constructor(path: string, options: FifoReaderOptions = {}) {
    this.path = path;
    this.onBytes = options.onBytes;
    this.openTimeoutMs = options.openTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    try {
      this.fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      this.openError = err; // reported by chunks()
    }
  }

  get bytesRead(): number {
    return this.total;
  }

  /**
   * The FIFO's bytes in chunks, in order, until QEMU closes its end. Each chunk is a fresh buffer the
   * consumer owns. The stream reads ahead up to its high-water mark while the consumer hashes and
   * compresses, so the pipe keeps draining, and stops reading when that is full (bounded memory).
   */
  async *chunks(): AsyncGenerator<Buffer> {
    if (this.openError !== undefined) throw new VmpmError(`cannot open the memory FIFO ${this.path}: ${describeError(this.openError)}`, { cause: this.openError });
    const fd = this.fd;
    if (this.closed || fd === undefined) throw new VmpmError(`memory FIFO ${this.path} was closed (capture aborted) before reading started`);
    // libuv keeps the descriptor non-blocking and reads it when it is readable.
    const stream = new Socket({ fd, readable: true, writable: false });
    this.stream = stream;
    this.fd = undefined; // the stream owns (and closes) it now
    const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        // Until the first byte, the bound is QEMU opening its end (it writes at once when it has).
        const next = await this.withinIdleBound(iterator.next(), this.total === 0);
        if (next.done) break;
        this.total += next.value.length;
        this.onBytes?.(this.total);
        yield next.value;
      }
    } catch (err) {
      if (err instanceof FifoIdleError) throw err;
      // close() during the stream (an abort) destroys it: say so instead of Node's "Premature close".
      if (this.closed) throw new VmpmError(`reading the memory FIFO ${this.path} stopped: it was closed (capture aborted) after ${this.total} bytes`);
      throw new VmpmError(`reading the memory FIFO ${this.path} failed after ${this.total} bytes: ${describeError(err)}`, { cause: err });
    } finally {
      await this.close();
    }
  }

  /** `next`, unless the writer stays silent past the bound: then the stream is destroyed and a FifoIdleError thrown. */
  private async withinIdleBound<T>(next: Promise<T>, first: boolean): Promise<T> {
    const ms = first ? this.openTimeoutMs : this.idleTimeoutMs;
    let deadline: IoDeadline | undefined;
    const idle = new Promise<'idle'>((resolve) => {
      // Data that reached the kernel while vmpm's loop was stalled is not silence (io-deadline.ts).
      deadline = ioDeadline(ms, () => resolve('idle'));
    });
    try {
      const winner = await Promise.race([next, idle]);
      if (winner !== 'idle') return winner;
    } finally {
      deadline?.cancel();
    }
    // close() (chunks()'s finally) removes the FIFO's name, then destroys the stream: never the other way round.
    next.catch(() => undefined); // rejects once the stream is destroyed
    throw new FifoIdleError(
      first
        ? `QEMU did not open the memory FIFO ${this.path} within ${ms} ms (or opened it and wrote nothing)`
        : `QEMU wrote nothing into the memory FIFO ${this.path} for ${ms} ms after ${this.total} bytes (is QEMU stopped or hung?)`,
    );
  }

  /**
   * Closes the read end; never waits. In this order:
   * 1. a momentary reader lets through a writer blocked in open() right now (possible only if our own
   *    read end is already gone, e.g. the stream failed);
   * 2. the FIFO's name is replaced by a self-referencing symlink (closedName), so an open that comes
   *    later (a command still queued in QEMU) fails with ELOOP instead of blocking QEMU's main loop
   *    with nobody left to read, or creating a file;
   * 3. the read ends are closed: a writer that got in fails its next write with EPIPE (QEMU ignores
   *    SIGPIPE) and its dump ends with an error instead of blocking forever on a full pipe.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Steps 1 and 2 are releaseFifo's; a path we could not open is not ours to replace.
    if (this.openError === undefined) releaseFifo(this.path);
    if (this.stream) this.stream.destroy();
    else if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Lets go of a FIFO nobody reads any more (a killed vmpm's, leftovers.ts): a writer blocked in open()
 * right now proceeds (a momentary reader comes and goes; Linux wakes the writer on the reader count's
 * change even if that reader is gone again) and its first write fails with EPIPE; a later open fails
 * with ELOOP (closedName). Never blocks. False if `path` was no FIFO.
 */
export function releaseFifo(path: string): boolean {
  let fd: number;
  try {
    if (!lstatSync(path).isFIFO()) return false;
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch {
    return false;
  }
  closedName(path);
  closeSync(fd);
  return true;
}

/**
 * Replaces the FIFO at `path` by a symlink to itself in one rename(2) (no moment without a name, in
 * which an O_CREAT open would create a file): every later open of `path` fails with ELOOP.
 * If the directory is gone, so is the path, and nothing is needed.
 */
function closedName(path: string): void {
  const temporary = `${path}.closed`;
  try {
    symlinkSync(basename(path), temporary);
    renameSync(temporary, path);
  } catch {
    try {
      unlinkSync(temporary);
    } catch {
      // never made
    }
  }
}
