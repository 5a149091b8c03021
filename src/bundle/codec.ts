/**
 * The one module that chooses and calls a zstd implementation. Two compression paths write the same
 * kind of frame (one standard zstd frame with its content size, docs/bundle-format.md):
 * - portable: zstd-codec (WebAssembly, zstd 1.3.6), always installed, and the only decoder;
 * - native: the optional addon of native-zstd.ts (libzstd 1.5.7), used when it loads, about 1.7x less
 *   CPU per compressed byte here (README "Dependencies").
 * VMPM_CODEC=portable|native|auto (default auto) forces one path (native: an error when it cannot load).
 *
 * zstd-codec It hides the library's traps (see
 * shared/reference/zstd-in-node.md): a callback-only init, a fixed 16 MiB wasm heap that aborts with
 * a thrown *string* and prints "OOM" to stdout, null returns on failure, and an instance that must
 * not be reused after an abort. Callers get Buffers or a CodecError, nothing else.
 *
 * One instance per thread (main thread and each compression worker), created lazily and reused:
 * creating one costs ~33 ms and a fresh 16 MiB heap.
 */
import { ZstdCodec, type ZstdSimple } from 'zstd-codec';
import { describeError } from '../util/errors';
import { CodecError } from './errors';
import { NATIVE_PACKAGE, nativeEncode, nativeZstd } from './native-zstd';
import { rawFrameContent } from './raw-frame';

/** Largest uncompressed input vmpm ever compresses or decompresses in one frame. */
export const MAX_FRAME_INPUT = 4 * 1024 * 1024;
/**
 * What the writer uses unless told otherwise. 1 MiB frames cost about 1% of ratio against 4 MiB ones
 * (bench/bundle-write.ts) but a cold random read decompresses a quarter as much (p90 4 ms instead of
 * 13-30 ms) and the pipeline overlaps better on two cores, so writes are faster too.
 */
export const DEFAULT_FRAME_INPUT = 1024 * 1024;

/** Levels the writer accepts. Above 9 the heap only fits tiny inputs. */
export const MIN_LEVEL = 1;
export const MAX_LEVEL = 9;

/**
 * Largest `Simple.compress` input that fits the 16 MiB heap at each level, rounded down to whole MiB
 * from the measured limits (L1-3 ~4.9-5.2 MiB, L4-5 4.2, L6-7 3.7, L8 3.2, L9 2.2).
 */
export function maxInputForLevel(level: number): number {
  const MiB = 1024 * 1024;
  if (level <= 5) return 4 * MiB;
  if (level <= 8) return 3 * MiB;
  return 2 * MiB;
}

/**
 * Upper bound of a compressed frame for `n` input bytes (ZSTD_compressBound plus slack), used by
 * readers to refuse absurd compressed lengths before reading them.
 */
export function compressBound(n: number): number {
  return n + (n >>> 8) + 1024;
}

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * Reads the frame content size from a zstd frame header without touching the codec (so a hostile
 * header cannot make it allocate). Returns undefined when the frame does not record its size.
 * Throws CodecError when the bytes are not a zstd frame header.
 */
export function frameContentSize(frame: Uint8Array): bigint | undefined {
  if (frame.length < 6) throw new CodecError(`zstd frame too short (${frame.length} bytes) to hold a frame header`);
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const magic = view.readUInt32LE(0);
  if (magic !== ZSTD_MAGIC) {
    throw new CodecError(`not a zstd frame: magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${ZSTD_MAGIC.toString(16)}`);
  }
  const descriptor = view[4]!;
  const fcsFlag = descriptor >>> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  if (descriptor & 0x08) throw new CodecError('zstd frame header has its reserved bit set');
  const dictIdBytes = [0, 1, 2, 4][descriptor & 0x03]!;
  const fcsBytes = fcsFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  let pos = 5 + (singleSegment ? 0 : 1) + dictIdBytes;
  if (fcsBytes === 0) return undefined;
  if (view.length < pos + fcsBytes) throw new CodecError('zstd frame header truncated before its content size');
  switch (fcsBytes) {
    case 1:
      return BigInt(view[pos]!);
    case 2:
      return BigInt(view.readUInt16LE(pos) + 256);
    case 4:
      return BigInt(view.readUInt32LE(pos));
    default:
      return view.readBigUInt64LE(pos);
  }
}

interface Instance {
  simple: ZstdSimple;
  /** What the runtime tried to print (e.g. "OOM" before an abort), kept for the error text. */
  printed: string[];
}

let current: Promise<Instance> | undefined;

/**
 * Creates a zstd-codec instance. Emscripten binds its print functions to console.log/console.warn
 * at the moment the module factory runs, synchronously inside `ZstdCodec.run`; swapping them for
 * that call routes the instance's output into `printed` for good, so an OOM never reaches stdout.
 */
function createInstance(): Promise<Instance> {
  return new Promise<Instance>((resolve, reject) => {
    const printed: string[] = [];
    const capture = (...args: unknown[]): void => {
      if (printed.length < 20) printed.push(args.map(String).join(' '));
    };
    const savedLog = console.log;
    const savedWarn = console.warn;
    console.log = capture;
    console.warn = capture;
    try {
      ZstdCodec.run((zstd) => {
        try {
          resolve({ simple: new zstd.Simple(), printed });
        } catch (err) {
          reject(new CodecError(`zstd-codec failed to initialise: ${describeError(err)}`, { cause: err }));
        }
      });
    } catch (err) {
      reject(new CodecError(`zstd-codec failed to initialise: ${describeError(err)}`, { cause: err }));
    } finally {
      console.log = savedLog;
      console.warn = savedWarn;
    }
  });
}

function instance(): Promise<Instance> {
  if (!current) {
    current = createInstance();
    // A failed init must not poison later attempts.
    current.catch(() => (current = undefined));
  }
  return current;
}

/**
 * Runs one codec call; a thrown value (an emscripten abort string) discards the instance, because
 * the runtime has set ABORT and must not be trusted again.
 */
async function call<T>(what: string, fn: (simple: ZstdSimple) => T): Promise<T> {
  const pending = instance();
  const inst = await pending;
  try {
    return fn(inst.simple);
  } catch (err) {
    if (current === pending) current = undefined;
    const printed = inst.printed.length > 0 ? ` (runtime said: ${inst.printed.join('; ')})` : '';
    throw new CodecError(`zstd ${what} aborted: ${describeError(err)}${printed}`, { cause: err });
  }
}

/**
 * Initialises this thread's codec ahead of use (optional). For 'decompress' (the default) that is
 * always the wasm instance (the only decoder); for 'compress' only when the portable path compresses,
 * so a compression worker on the native path never allocates the 16 MiB wasm heap.
 */
export async function warmUpCodec(use: 'compress' | 'decompress' = 'decompress'): Promise<void> {
  if (use === 'decompress' || compressionCodec().path === 'portable') await instance();
}

/** Compresses `data` (1 byte .. maxInputForLevel(level)) into one standard zstd frame with its content size. */
export async function compressFrame(data: Uint8Array, level: number): Promise<Buffer> {
  if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
    throw new CodecError(`zstd level ${level} is not supported (expected an integer ${MIN_LEVEL}..${MAX_LEVEL})`);
  }
  const limit = maxInputForLevel(level);
  if (data.length === 0) throw new CodecError('refusing to compress an empty frame (zstd-codec cannot decode one)');
  if (data.length > limit) {
    throw new CodecError(`refusing to compress ${data.length} bytes in one frame at level ${level} (limit ${limit})`);
  }
  if (compressionCodec().path === 'native') {
    try {
      return withContentSize(nativeEncode(data, level), data.length);
    } catch (err) {
      throw err instanceof CodecError ? err : new CodecError(`native zstd compression of ${data.length} bytes failed: ${describeError(err)}`, { cause: err });
    }
  }
  const out = await call('compression', (s) => s.compress(data, level));
  if (!out) throw new CodecError(`zstd compression of ${data.length} bytes at level ${level} failed`);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

export interface CompressionCodec {
  path: 'native' | 'portable';
  /** For provenance: package, version and the zstd inside. */
  name: string;
}

const PORTABLE: CompressionCodec = { path: 'portable', name: 'zstd-codec 0.1.5 (zstd 1.3.6, WebAssembly)' };
let chosen: CompressionCodec | undefined;

/**
 * The compression path this thread uses (VMPM_CODEC, else native when it loads). Throws CodecError
 * for an unknown VMPM_CODEC or VMPM_CODEC=native without the addon. Every thread decides the same
 * way (same environment, same installation), so the writer asks once on its own thread to fail early.
 */
export function compressionCodec(): CompressionCodec {
  if (chosen) return chosen;
  const want = process.env.VMPM_CODEC ?? 'auto';
  if (want !== 'auto' && want !== 'native' && want !== 'portable') {
    throw new CodecError(`VMPM_CODEC=${want} is not a codec (expected portable, native or auto)`);
  }
  if (want === 'portable') return (chosen = PORTABLE);
  const native = nativeZstd();
  if ('error' in native) {
    if (want === 'native') throw new CodecError(`VMPM_CODEC=native, but ${NATIVE_PACKAGE} does not load here: ${native.error}`);
    return (chosen = PORTABLE);
  }
  return (chosen = { path: 'native', name: `${NATIVE_PACKAGE} ${native.version} (zstd 1.5.7, native)` });
}

/** @internal Tests: forget the choice so the next call reads VMPM_CODEC again. */
export function __resetCodecChoice(): void {
  chosen = undefined;
}

/**
 * `frame` (one zstd frame of `size` content bytes) with a 4-byte Frame_Content_Size field (RFC 8878
 * 3.1.1.1) when its header has none, as the native streaming compressor leaves it: the descriptor's
 * FCS flag becomes 2 and the field goes after the window descriptor and dictionary ID; the blocks are
 * unchanged. The result is a fresh buffer that owns its memory (transferable between threads). A
 * frame that has the field is returned as it is once the value is checked.
 */
export function withContentSize(frame: Buffer, size: number): Buffer {
  if (!Number.isInteger(size) || size < 1 || size > 0xffffffff) throw new CodecError(`content size ${size} does not fit a 4-byte field`);
  const declared = frameContentSize(frame);
  if (declared !== undefined) {
    if (declared !== BigInt(size)) throw new CodecError(`zstd frame declares ${declared} bytes of content, expected ${size}`);
    return frame;
  }
  const d = frame[4]!;
  // No content size means neither the FCS flag nor single segment is set, so a window descriptor follows.
  const headerEnd = 6 + [0, 1, 2, 4][d & 0x03]!;
  const out = Buffer.allocUnsafeSlow(frame.length + 4);
  frame.copy(out, 0, 0, headerEnd);
  out[4] = d | (2 << 6);
  out.writeUInt32LE(size, headerEnd);
  frame.copy(out, headerEnd + 4, headerEnd);
  return out;
}

/**
 * Decompresses one frame that must hold exactly `expectedSize` bytes (1 .. MAX_FRAME_INPUT): a frame
 * of raw blocks only is copied out in JS (raw-frame.ts rawFrameContent), any other by zstd-codec. The
 * content size in the frame header is checked first, so a lying frame is refused before the codec
 * allocates anything, and the result length is checked after.
 */
export async function decompressFrame(frame: Uint8Array, expectedSize: number): Promise<Buffer> {
  checkFrameHeader(frame, expectedSize);
  // Frames of raw blocks only (incompressible pages, raw-frame.ts) are copied out without the decoder.
  const raw = rawFrameContent(frame, expectedSize);
  if (raw) return raw;
  return decodeChecked(frame, expectedSize);
}

/** @internal Tests: decompressFrame's checks and zstd-codec, never the raw-block copy (the reference the copy is fuzzed against). */
export async function __decompressFrameByCodec(frame: Uint8Array, expectedSize: number): Promise<Buffer> {
  checkFrameHeader(frame, expectedSize);
  return decodeChecked(frame, expectedSize);
}

/** What decompressFrame checks before any decoding: the sizes, and the content size the frame header declares. */
function checkFrameHeader(frame: Uint8Array, expectedSize: number): void {
  if (!Number.isInteger(expectedSize) || expectedSize < 1 || expectedSize > MAX_FRAME_INPUT) {
    throw new CodecError(`refusing to decompress a frame of declared size ${expectedSize} (expected 1..${MAX_FRAME_INPUT})`);
  }
  if (frame.length > compressBound(MAX_FRAME_INPUT)) {
    throw new CodecError(`refusing to decompress a ${frame.length}-byte frame (larger than any frame of ${MAX_FRAME_INPUT} bytes)`);
  }
  const declared = frameContentSize(frame);
  if (declared === undefined) throw new CodecError('zstd frame does not record its content size');
  if (declared !== BigInt(expectedSize)) {
    throw new CodecError(`zstd frame header declares ${declared} bytes of content, expected ${expectedSize}`);
  }
}

async function decodeChecked(frame: Uint8Array, expectedSize: number): Promise<Buffer> {
  const out = await call('decompression', (s) => s.decompress(frame));
  if (!out) throw new CodecError(`zstd decompression failed (corrupt or truncated frame, expected ${expectedSize} bytes)`);
  if (out.length !== expectedSize) {
    throw new CodecError(`zstd frame decompressed to ${out.length} bytes, expected ${expectedSize}`);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * @internal Test hook: Simple.compress without the size/level guards, so tests can provoke a real
 * heap abort and check that it is contained (CodecError, nothing on stdout, instance recreated).
 */
export async function __compressUnchecked(data: Uint8Array, level: number): Promise<Buffer | null> {
  const out = await call('compression', (s) => s.compress(data, level));
  return out ? Buffer.from(out.buffer, out.byteOffset, out.byteLength) : null;
}
