/**
 * Body of a frame-decoding worker thread (one zstd instance per thread), for sequential reads of a
 * whole bundle (page-stream.ts). Per frame it checks the stored bytes against the frame's SHA-256
 * from the trailer, decompresses them (the size must be exactly the declared one), checks the page
 * digests when asked, and optionally deflates every page for the kdump exporter (zlib level 1, 4 KiB
 * window: what QEMU and the single-thread exporter did). A bad frame is a `problem` reply, not a crash.
 */
import { parentPort } from 'node:worker_threads';
import { deflateSync } from 'node:zlib';
import { describeError } from '../util/errors';
import { decompressFrame, warmUpCodec } from './codec';
import { DIGEST_SIZE, PAGE_SIZE } from './format';
import { sha256 } from './pages';
import { looksIncompressible } from './raw-frame';

export interface DecodeRequest {
  id: number;
  compressed: Uint8Array;
  size: number;
  sha256: Uint8Array;
  /** The frame's slot digests (32 bytes per page), to check every page against; absent: not checked. */
  pageDigests?: Uint8Array;
  /** Also deflate every page (kdump export). */
  deflate?: boolean;
}

export interface DeflatedPages {
  /** The stored form of every page, back to back: zlib where it is smaller, else the page itself. */
  packed: Uint8Array;
  /** End offset of page k's stored bytes in `packed` (it starts at the previous end). */
  ends: Uint32Array;
  /** 1 when page k is zlib-compressed, 0 when stored raw. */
  zlib: Uint8Array;
}

export type DecodeResponse = { id: number; data: Uint8Array; deflated?: DeflatedPages } | { id: number; problem: string } | { id: number; error: string };

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** The frame's problem in the words BundleReader uses (the caller prefixes the path and the frame). */
async function decode(msg: DecodeRequest): Promise<{ data: Buffer } | { problem: string }> {
  const d = sha256(msg.compressed);
  if (!d.equals(msg.sha256)) return { problem: ` SHA-256 mismatch: index says ${hex(msg.sha256)}, data hashes to ${d.toString('hex')}` };
  let data: Buffer;
  try {
    data = await decompressFrame(msg.compressed, msg.size);
  } catch (err) {
    return { problem: `: ${describeError(err)}` };
  }
  if (msg.pageDigests) {
    for (let k = 0; k * PAGE_SIZE < data.length; k++) {
      const got = sha256(data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
      const want = msg.pageDigests.subarray(k * DIGEST_SIZE, (k + 1) * DIGEST_SIZE);
      if (!got.equals(want)) return { problem: `: stored page ${k} SHA-256 mismatch: index says ${hex(want)}, data hashes to ${got.toString('hex')}` };
    }
  }
  return { data };
}

/**
 * Every page's stored form for a kdump: zlib (level 1, 4 KiB window) where that is smaller, else the
 * page itself. A page that looks incompressible to the writer's own estimate (raw-frame.ts, a byte
 * census of 256 sampled bytes) is stored as it is without trying: deflating it cost as much as a
 * compressible page and, on the bench guest's 23,386 sampled data pages, shrank none of the 9,358 it
 * flags (the pages stored raw were the same with or without the estimate).
 */
export function deflatePages(data: Uint8Array): DeflatedPages {
  const n = Math.floor(data.length / PAGE_SIZE);
  const parts: Uint8Array[] = [];
  const ends = new Uint32Array(n);
  const zlib = new Uint8Array(n);
  let end = 0;
  for (let k = 0; k < n; k++) {
    const page = data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
    const z = looksIncompressible(data, k * PAGE_SIZE) ? page : deflateSync(page, { level: 1, windowBits: 12 });
    const smaller = z.length < page.length;
    parts.push(smaller ? z : page);
    zlib[k] = smaller ? 1 : 0;
    end += smaller ? z.length : page.length;
    ends[k] = end;
  }
  const packed = new Uint8Array(end);
  let at = 0;
  for (const p of parts) {
    packed.set(p, at);
    at += p.length;
  }
  return { packed, ends, zlib };
}

const port = parentPort;
if (port) {
  warmUpCodec().catch(() => undefined);
  port.on('message', (msg: DecodeRequest) => {
    decode(msg).then(
      (r) => {
        if ('problem' in r) {
          port.postMessage({ id: msg.id, problem: r.problem } satisfies DecodeResponse);
          return;
        }
        // zstd-codec returns a fresh array: transferred, not copied.
        const data = r.data.byteOffset === 0 && r.data.byteLength === r.data.buffer.byteLength ? r.data : new Uint8Array(r.data);
        const transfer = [data.buffer as ArrayBuffer];
        const reply: DecodeResponse = { id: msg.id, data };
        if (msg.deflate) {
          reply.deflated = deflatePages(data);
          transfer.push(reply.deflated.packed.buffer as ArrayBuffer, reply.deflated.ends.buffer as ArrayBuffer, reply.deflated.zlib.buffer as ArrayBuffer);
        }
        port.postMessage(reply, transfer);
      },
      (err: unknown) => port.postMessage({ id: msg.id, error: describeError(err) } satisfies DecodeResponse),
    );
  });
}
