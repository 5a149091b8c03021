/**
 * A small pool of worker threads that compress frames (zstd-codec has no threads of its own, so
 * parallelism means one instance per worker). Requests go to the worker with the fewest pending
 * frames (worker-pool.ts: unref'd when idle, a dead worker fails its frames with a VmpmError and
 * poisons the pool); callers keep results in order themselves.
 */
import { join } from 'node:path';
import { VmpmError } from '../util/errors';
import type { WorkerRequest, WorkerResponse } from './compress-worker';
import { WorkerPool } from './worker-pool';

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

export class CompressPool extends WorkerPool<WorkerRequest, WorkerResponse> {
  /** `script` is for tests (a worker that misbehaves); it defaults to compress-worker.js. */
  constructor(
    size: number,
    private readonly level: number,
    script: string = join(__dirname, 'compress-worker.js'),
  ) {
    super(size, script, 'compression');
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
}

function view(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
