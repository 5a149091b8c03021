/**
 * Body of a compression worker thread (one zstd-codec instance per thread). Two jobs:
 * - hash: SHA-256 of each 4 KiB page of a batch (the writer dedups on the results), and which pages
 *   look incompressible (raw-frame.ts);
 * - compress: one zstd frame (compressed, or of raw blocks), plus the SHA-256 of its bytes.
 * Either way the input buffer is handed back so the writer can refill it instead of allocating.
 */
import { parentPort } from 'node:worker_threads';
import { describeError } from '../util/errors';
import { compressFrame, warmUpCodec } from './codec';
import { hashPages, sha256 } from './pages';
import { estimatePages, rawFrame } from './raw-frame';

export type WorkerRequest = { kind: 'compress'; id: number; data: Uint8Array; level: number; raw?: boolean } | { kind: 'hash'; id: number; data: Uint8Array };

export type WorkerResponse =
  | { id: number; compressed: Uint8Array; sha256: Uint8Array; input: Uint8Array }
  | { id: number; digests: Uint8Array; input: Uint8Array; incompressible: Uint8Array }
  | { id: number; error: string };

function owns(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

const port = parentPort;
if (port) {
  // Ready the compressor now (the wasm instance, unless the native one compresses), while the writer
  // is still busy with metadata.
  warmUpCodec('compress').catch(() => undefined);
  const fail = (id: number, err: unknown): void => port.postMessage({ id, error: describeError(err) } satisfies WorkerResponse);
  port.on('message', (msg: WorkerRequest) => {
    const transfer: ArrayBuffer[] = owns(msg.data) ? [msg.data.buffer as ArrayBuffer] : [];
    if (msg.kind === 'hash') {
      try {
        const digests = hashPages(msg.data);
        const incompressible = estimatePages(msg.data);
        port.postMessage({ id: msg.id, digests, input: msg.data, incompressible } satisfies WorkerResponse, [
          ...transfer,
          digests.buffer as ArrayBuffer,
          incompressible.buffer as ArrayBuffer,
        ]);
      } catch (err) {
        fail(msg.id, err);
      }
      return;
    }
    (msg.raw ? Promise.resolve(rawFrame(msg.data)) : compressFrame(msg.data, msg.level)).then((out) => {
      const digest = sha256(out);
      // zstd-codec returns a fresh array, so the result can be transferred rather than copied.
      const owned = owns(out) ? out : Buffer.from(out);
      port.postMessage({ id: msg.id, compressed: owned, sha256: digest, input: msg.data } satisfies WorkerResponse, [...transfer, owned.buffer as ArrayBuffer]);
    }, (err: unknown) => fail(msg.id, err));
  });
}
