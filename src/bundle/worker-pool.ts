/**
 * The worker-thread plumbing the compression pool (compress-pool.ts) and the frame-decoding pool
 * (decode-pool.ts) share: a request goes to the worker with the fewest pending, with an id its reply
 * carries back; idle workers are unref'd, so a pool never keeps the process alive; a worker that
 * dies fails its pending requests with a VmpmError and poisons the pool; `close()` terminates them.
 */
import { Worker } from 'node:worker_threads';
import { VmpmError } from '../util/errors';

interface Slot<Res> {
  worker: Worker;
  pending: Map<number, { resolve: (r: Res) => void; reject: (e: Error) => void }>;
}

/** A reply is `{ id, error }` when the worker's job failed, else the job's own result. */
export class WorkerPool<Req, Res extends { id: number }> {
  private readonly slots: Array<Slot<Res>> = [];
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  /** `name`: what the errors call one worker ("compression" -> "compression worker crashed: ..."). */
  constructor(
    size: number,
    script: string,
    private readonly name: string,
  ) {
    for (let i = 0; i < Math.max(1, size); i++) this.slots.push(this.spawn(script));
  }

  private spawn(script: string): Slot<Res> {
    const worker = new Worker(script);
    const slot: Slot<Res> = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (msg: Res) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if ('error' in msg) p.reject(new VmpmError(`${this.name} worker failed: ${String(msg.error)}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.fail(slot, new VmpmError(`${this.name} worker crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(slot, new VmpmError(`${this.name} worker exited unexpectedly (code ${code})`));
    });
    return slot;
  }

  private fail(slot: Slot<Res>, err: Error): void {
    this.failure ??= err;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
  }

  /** Sends `request(id)` to the least busy worker, transferring `data`'s memory when it owns all of it. */
  protected run(request: (id: number) => Req, data: Uint8Array): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new VmpmError(`${this.name} pool is closed`));
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < best.pending.size) best = s;
    const id = this.nextId++;
    const transfer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? [data.buffer as ArrayBuffer] : [];
    return new Promise<Res>((resolve, reject) => {
      best.pending.set(id, { resolve, reject });
      best.worker.ref();
      best.worker.postMessage(request(id), transfer);
    });
  }

  /** Terminates every worker; pending requests fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new VmpmError(`${this.name} pool closed`);
    for (const s of this.slots) this.fail(s, err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
