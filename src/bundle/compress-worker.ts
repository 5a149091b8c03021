/**
 * Body of a compression worker thread: one zstd-codec instance per thread, one frame per message.
 * It also hashes the compressed frame, so the main thread only hashes pages.
 */
import { parentPort } from 'node:worker_threads';
import { describeError } from '../util/errors';
import { compressFrame, warmUpCodec } from './codec';
import { sha256 } from './pages';

export interface CompressRequest {
  id: number;
  data: Uint8Array;
  level: number;
}

export type CompressResponse =
  | { id: number; compressed: Uint8Array; sha256: Uint8Array; input: Uint8Array }
  | { id: number; error: string };

const port = parentPort;
if (port) {
  // Instantiate the wasm codec now, while the writer is still busy with metadata.
  warmUpCodec().catch(() => undefined);
  port.on('message', (msg: CompressRequest) => {
    compressFrame(msg.data, msg.level).then(
      (out) => {
        const digest = sha256(out);
        // Transfer when the result owns its whole ArrayBuffer (it does: zstd-codec returns a fresh copy).
        const owned = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : Buffer.from(out);
        // The input goes back too, so the writer can refill the same memory instead of allocating.
        const reply: CompressResponse = { id: msg.id, compressed: owned, sha256: digest, input: msg.data };
        const transfer = [owned.buffer as ArrayBuffer];
        if (msg.data.byteOffset === 0 && msg.data.byteLength === msg.data.buffer.byteLength) transfer.push(msg.data.buffer as ArrayBuffer);
        port.postMessage(reply, transfer);
      },
      (err: unknown) => {
        const reply: CompressResponse = { id: msg.id, error: describeError(err) };
        port.postMessage(reply);
      },
    );
  });
}
