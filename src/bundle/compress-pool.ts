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
import type { WorkerRequest, WorkerResponse } from './compress-worker';

export interface CompressedFrame {
  compressed: Buffer;
  sha256: Buffer;
  /** The input buffer handed back by the worker, for reuse (absent when compressed in-thread). */
  input?: Buffer;
}

export interface HashedPages {
  /** 32-byte SHA-256 per page, in order. */
  digests: Buffer;
  /** The input buffer handed back (its pages are still needed for the frames). */
  input: Buffer;
  /** One byte per page: 1 when it looks incompressible (raw-frame.ts). */
  incompressible?: Uint8Array;
}

interface Pending {
  resolve: (r: WorkerResponse) => void;
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
    worker.on('message', (msg: WorkerResponse) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if ('error' in msg) p.reject(new VmpmError(`compression worker failed: ${msg.error}`));
      else p.resolve(msg);
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
  async compress(data: Buffer, raw = false): Promise<CompressedFrame> {
    const msg = await this.run((id) => ({ kind: 'compress', id, data, level: this.level, raw }), data);
    if (!('compressed' in msg)) throw new VmpmError('compression worker sent an unexpected reply');
    return { compressed: view(msg.compressed), sha256: Buffer.from(msg.sha256), input: view(msg.input) };
  }

  /** SHA-256 of each 4 KiB page of `data` (transferred, and handed back in the result). */
  async hashPages(data: Buffer): Promise<HashedPages> {
    const msg = await this.run((id) => ({ kind: 'hash', id, data }), data);
    if (!('digests' in msg)) throw new VmpmError('compression worker sent an unexpected reply');
    return { digests: view(msg.digests), input: view(msg.input), incompressible: msg.incompressible };
  }

  private run(request: (id: number) => WorkerRequest, data: Buffer): Promise<WorkerResponse> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new VmpmError('compression pool is closed'));
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < best.pending.size) best = s;
    const id = this.nextId++;
    return new Promise<WorkerResponse>((resolve, reject) => {
      best.pending.set(id, { resolve, reject });
      best.worker.ref();
      const transferable = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      best.worker.postMessage(request(id), transferable ? [data.buffer as ArrayBuffer] : []);
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

function view(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
