/**
 * Worker threads that decode frames for page-stream.ts (decode-worker.ts): one request per frame,
 * to the worker with the fewest pending (worker-pool.ts: unref'd when idle, a dead worker fails its
 * frames with a VmpmError and poisons the pool).
 */
import { join } from 'node:path';
import type { DecodeRequest, DecodeResponse } from './decode-worker';
import { WorkerPool } from './worker-pool';

export class DecodePool extends WorkerPool<DecodeRequest, DecodeResponse> {
  constructor(size: number, script = join(__dirname, 'decode-worker.js')) {
    super(size, script, 'frame decoding');
  }

  /** Decodes one frame; `compressed` is transferred when it owns its memory. */
  decode(request: Omit<DecodeRequest, 'id'>): Promise<DecodeResponse> {
    return this.run((id) => ({ ...request, id }), request.compressed);
  }
}
