/**
 * A small pool of worker threads that compress frames (zstd-codec has no threads of its own, so
 * parallelism means one instance per worker). Requests go to the worker with the fewest pending
 * frames; callers keep results in order themselves. Idle workers are unref'd so a pool never keeps
 * the process alive, and `close()` terminates them. A worker that dies fails its pending frames with
 * a VmpmError and poisons the pool.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { VmpmError } from '../util/errors';
import type { CompressRequest, CompressResponse } from './compress-worker';

export interface CompressedFrame {
  compressed: Buffer;
  sha256: Buffer;
  /** The input buffer handed back by the worker, for reuse (absent when compressed in-thread). */
  input?: Buffer;
}

interface Pending {
  resolve: (f: CompressedFrame) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

export class CompressPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  /** `script` is for tests (a worker that misbehaves); it defaults to compress-worker.js. */
  constructor(
    size: number,
    private readonly level: number,
    private readonly script: string = join(__dirname, 'compress-worker.js'),
  ) {
    for (let i = 0; i < Math.max(1, size); i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new Worker(this.script);
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (msg: CompressResponse) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if ('error' in msg) p.reject(new VmpmError(`compression failed: ${msg.error}`));
      else
        p.resolve({
          compressed: Buffer.from(msg.compressed.buffer, msg.compressed.byteOffset, msg.compressed.byteLength),
          sha256: Buffer.from(msg.sha256),
          input: Buffer.from(msg.input.buffer, msg.input.byteOffset, msg.input.byteLength),
        });
    });
    worker.on('error', (err) => this.fail(slot, new VmpmError(`compression worker crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(slot, new VmpmError(`compression worker exited unexpectedly (code ${code})`));
    });
    return slot;
  }

  private fail(slot: Slot, err: Error): void {
    this.failure ??= err;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
  }

  /** Compresses one frame. `data` must own its ArrayBuffer: it is transferred (and unusable afterwards). */
  compress(data: Buffer): Promise<CompressedFrame> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new VmpmError('compression pool is closed'));
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < best.pending.size) best = s;
    const id = this.nextId++;
    return new Promise<CompressedFrame>((resolve, reject) => {
      best.pending.set(id, { resolve, reject });
      best.worker.ref();
      const req: CompressRequest = { id, data, level: this.level };
      const transferable = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      best.worker.postMessage(req, transferable ? [data.buffer as ArrayBuffer] : []);
    });
  }

  /** Terminates every worker; pending frames fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new VmpmError('compression pool closed');
    for (const s of this.slots) this.fail(s, err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
