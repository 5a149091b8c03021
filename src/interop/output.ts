/**
 * Output files of export/import: written under a temporary name in the target directory (mode 0600:
 * guest memory is sensitive), fsynced, then linked into place (link fails instead of replacing a file
 * that appeared meanwhile) or, with force, renamed over the target. A failure or an abort deletes the
 * temporary file, so no half-written output ever carries the requested name.
 *
 * SparseWriter gathers positional writes into 4 MiB batches written by a thread of its own, and never
 * writes the zero pages it is not given: they stay file-system holes (the final size is set by truncate).
 */
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { type FileHandle, link, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { VmpmError, describeError } from '../util/errors';

/** Refuses an existing output (unless force) and a missing directory before any work is done. */
export function checkTarget(path: string, force: boolean): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    st = undefined;
  }
  if (st) {
    if (st.isDirectory()) throw new VmpmError(`${path} is a directory; give a file name`);
    if (!force) throw new VmpmError(`${path} already exists (use --force to overwrite it)`);
  }
  const dir = dirname(resolve(path));
  try {
    if (!lstatSync(dir).isDirectory()) throw new VmpmError(`cannot write ${path}: ${dir} is not a directory`);
  } catch (err) {
    if (err instanceof VmpmError) throw err;
    throw new VmpmError(`cannot write ${path}: directory ${dir} does not exist`);
  }
}

export class OutputFile {
  private done = false;
  private constructor(
    readonly target: string,
    readonly temp: string,
    readonly fh: FileHandle,
    private readonly force: boolean,
  ) {}

  static async create(target: string, force: boolean): Promise<OutputFile> {
    checkTarget(target, force);
    const temp = join(dirname(resolve(target)), `.${basename(target)}.partial-${randomBytes(4).toString('hex')}`);
    try {
      return new OutputFile(target, temp, await open(temp, 'wx', 0o600), force);
    } catch (err) {
      throw new VmpmError(`cannot write ${target}: ${describeError(err)}`, { cause: err });
    }
  }

  /** Sets the final size, fsyncs and moves the file into place. */
  async commit(size?: bigint): Promise<void> {
    try {
      if (size !== undefined) await this.fh.truncate(Number(size));
      await this.fh.sync();
      await this.fh.close();
      if (this.force) await rename(this.temp, this.target);
      else {
        await link(this.temp, this.target);
        await unlink(this.temp);
      }
      this.done = true;
    } catch (err) {
      await this.abort();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new VmpmError(`${this.target} appeared while it was being written (refusing to overwrite it)`);
      throw new VmpmError(`cannot write ${this.target}: ${describeError(err)}`, { cause: err });
    }
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.fh.close().catch(() => undefined);
    await unlink(this.temp).catch(() => undefined);
  }
}

const BATCH = 4 * 1024 * 1024;
/** Batches written or being written at once, besides the one being filled. */
const IN_FLIGHT = 2;

/** Bytes written after which the writing thread starts the next early writeback (see WRITER_THREAD). */
const EARLY_SYNC_BYTES = 32 * 1024 * 1024;

/**
 * Body of the writing thread: for each batch, its runs (file position, offset in the batch, length)
 * written in order with synchronous positional writes; the batch goes back for reuse. Every
 * EARLY_SYNC_BYTES (when the output is to be fsynced: exports, not import's temporary file) it also starts an fdatasync on the libuv pool (one at a time, not waited for) so
 * the disk writes while the caller still decodes, and the final fsync of commit() has little left to
 * do (it was 1.1 s of a 3.6 s elf export, all of it after the last write). An error of an early sync
 * is reported with the next batch or by the drain message finish() sends last (which also waits for
 * the sync in progress): the final fsync on the same descriptor would not see it again.
 */
const WRITER_THREAD = `
const { writeSync, fdatasync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const early = workerData.earlyWriteback;
let sinceSync = 0, syncing = false, syncError, drain;
function syncDone(err) {
  syncing = false;
  if (err) syncError ??= err;
  if (drain) { drain(); drain = undefined; }
}
function fail(err) { parentPort.postMessage({ error: String(err && err.message || err) }); }
parentPort.on('message', (m) => {
  if (m.drain) {
    const reply = () => (syncError ? fail(syncError) : parentPort.postMessage({ drained: true }));
    if (syncing) drain = reply; else reply();
    return;
  }
  const { fd, buf, runs, count } = m;
  try {
    if (syncError) throw syncError;
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let i = 0; i < count; i++) {
      const pos = runs[3 * i], off = runs[3 * i + 1], len = runs[3 * i + 2];
      for (let done = 0; done < len; ) done += writeSync(fd, b, off + done, len - done, pos + done);
      sinceSync += len;
    }
    if (early && sinceSync >= ${EARLY_SYNC_BYTES} && !syncing) {
      sinceSync = 0;
      syncing = true;
      fdatasync(fd, syncDone);
    }
    parentPort.postMessage({ buf, runs }, [buf.buffer, runs.buffer]);
  } catch (err) {
    fail(err);
  }
});
`;

interface Batch {
  buf: Buffer;
  /** (file position, offset in buf, length) per run. */
  runs: Float64Array;
  count: number;
  used: number;
}

/**
 * Positional writes at any offsets (zero pages are simply never given: they stay file-system holes),
 * gathered into 4 MiB batches of runs — a write that continues the previous one extends its run —
 * and written by a thread of its own, so the caller's decoding and copying overlap the writes. The
 * runs of a batch are written in order and batches one after the other, so a later write over the
 * same bytes (a flattened stream's records may) wins, as with direct writes.
 */
export class SparseWriter {
  private readonly worker: Worker;
  private batch: Batch;
  private readonly free: Batch[] = [];
  private inFlight = 0;
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private closed = false;
  private drained = false;
  bytesWritten = 0;

  /**
   * `what`: the file, for the error line. `earlyWriteback`: the file will be fsynced (OutputFile.commit),
   * so start writing it back to disk while it is written (see WRITER_THREAD).
   */
  constructor(
    private readonly fh: FileHandle,
    private readonly what: string,
    options: { earlyWriteback?: boolean } = {},
  ) {
    this.batch = newBatch();
    this.worker = new Worker(WRITER_THREAD, { eval: true, workerData: { earlyWriteback: options.earlyWriteback === true } });
    this.worker.unref();
    this.worker.on('message', (m: { buf: Uint8Array; runs: Float64Array } | { error: string } | { drained: true }) => {
      if ('error' in m) return this.fail(new VmpmError(`cannot write ${this.what}: ${m.error}`));
      if ('drained' in m) {
        this.drained = true;
        return this.wake();
      }
      this.inFlight--;
      if (this.inFlight === 0) this.worker.unref();
      this.free.push({ buf: Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength), runs: m.runs, count: 0, used: 0 });
      this.wake();
    });
    this.worker.on('error', (err) => this.fail(new VmpmError(`the writing thread crashed: ${err.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new VmpmError(`the writing thread exited unexpectedly (code ${code})`));
    });
  }

  /**
   * Copies `data` (it may be a transient view) for writing at `position`. Returns a promise only when
   * the caller must wait for the writing thread (IN_FLIGHT batches already queued).
   */
  write(position: number, data: Buffer): Promise<void> | void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new VmpmError(`cannot write ${this.what}: its writer is closed`);
    let off = 0;
    while (off < data.length) {
      let b = this.batch;
      if (b.used === BATCH || b.count * 3 === b.runs.length) {
        const wait = this.send();
        if (wait) return wait.then(() => this.write(position + off, data.subarray(off)));
        b = this.batch;
      }
      const n = Math.min(data.length - off, BATCH - b.used);
      data.copy(b.buf, b.used, off, off + n);
      const last = 3 * (b.count - 1);
      if (b.count > 0 && b.runs[last]! + b.runs[last + 2]! === position + off && b.runs[last + 1]! + b.runs[last + 2]! === b.used) {
        b.runs[last + 2] = b.runs[last + 2]! + n;
      } else {
        b.runs[3 * b.count] = position + off;
        b.runs[3 * b.count + 1] = b.used;
        b.runs[3 * b.count + 2] = n;
        b.count++;
      }
      b.used += n;
      off += n;
      this.bytesWritten += n;
    }
  }

  /** Writes what is left and waits until every byte is written; the thread ends. */
  async finish(): Promise<void> {
    if (this.batch.count > 0) await this.send();
    while (this.inFlight > 0 && !this.failure) await new Promise<void>((resolve) => (this.waiter = resolve));
    if (!this.failure) {
      // The early writeback in progress, and any error it met (see WRITER_THREAD).
      this.worker.ref();
      this.worker.postMessage({ drain: true });
      while (!this.drained && !this.failure) await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    await this.close();
    if (this.failure) throw this.failure;
  }

  /** Ends the thread (after a failure elsewhere: what is queued may or may not be written). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }

  /** Hands the current batch to the thread; a promise when the caller must wait for a free one. */
  private send(): Promise<void> | undefined {
    const b = this.batch;
    this.inFlight++;
    this.worker.ref();
    this.worker.postMessage({ fd: this.fh.fd, buf: b.buf, runs: b.runs, count: b.count }, [b.buf.buffer as ArrayBuffer, b.runs.buffer as ArrayBuffer]);
    const next = this.free.pop();
    if (next) {
      this.batch = next;
      return undefined;
    }
    if (this.inFlight <= IN_FLIGHT) {
      this.batch = newBatch();
      return undefined;
    }
    return new Promise<void>((resolve) => (this.waiter = resolve)).then(() => {
      if (this.failure) throw this.failure;
      this.batch = this.free.pop()!;
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }
}

function newBatch(): Batch {
  // Each owns its memory (transferred to the thread and back); a run per page at the most.
  return { buf: Buffer.allocUnsafeSlow(BATCH), runs: new Float64Array(3 * (BATCH / 4096 + 1)), count: 0, used: 0 };
}

export async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
