/**
 * Worker threads that decode frames for page-stream.ts (decode-worker.ts): one request per frame,
 * to the worker with the fewest pending. Idle workers are unref'd, so a pool never keeps the process
 * alive; a worker that dies fails its pending frames with a VmpmError and poisons the pool.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { VmpmError } from '../util/errors';
import type { DecodeRequest, DecodeResponse } from './decode-worker';

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: DecodeResponse) => void; reject: (e: Error) => void }>;
}

export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private failure: Error | undefined;
  private closed = false;

  constructor(size: number, script = join(__dirname, 'decode-worker.js')) {
    for (let i = 0; i < Math.max(1, size); i++) this.slots.push(this.spawn(script));
  }

  private spawn(script: string): Slot {
    const worker = new Worker(script);
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (msg: DecodeResponse) => {
      const p = slot.pending.get(msg.id);
      if (!p) return;
      slot.pending.delete(msg.id);
      if (slot.pending.size === 0) worker.unref();
      if ('error' in msg) p.reject(new VmpmError(`frame decoding worker failed: ${msg.error}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => this.fail(slot, new VmpmError(`frame decoding worker crashed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed) this.fail(slot, new VmpmError(`frame decoding worker exited unexpectedly (code ${code})`));
    });
    return slot;
  }

  private fail(slot: Slot, err: Error): void {
    this.failure ??= err;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
  }

  /** Decodes one frame; `compressed` is transferred when it owns its memory. */
  decode(request: Omit<DecodeRequest, 'id'>): Promise<DecodeResponse> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new VmpmError('frame decoding pool is closed'));
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.pending.size < best.pending.size) best = s;
    const id = this.nextId++;
    const c = request.compressed;
    const transfer = c.byteOffset === 0 && c.byteLength === c.buffer.byteLength ? [c.buffer as ArrayBuffer] : [];
    return new Promise<DecodeResponse>((resolve, reject) => {
      best.pending.set(id, { resolve, reject });
      best.worker.ref();
      best.worker.postMessage({ ...request, id } satisfies DecodeRequest, transfer);
    });
  }

  /** Terminates every worker; pending frames fail. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new VmpmError('frame decoding pool closed');
    for (const s of this.slots) this.fail(s, err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
