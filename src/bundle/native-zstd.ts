/**
 * The optional native zstd compressor: @toondepauw/node-zstd, a napi-rs addon (libzstd 1.5.7) whose
 * prebuilt binary comes inside a per-platform npm package (an optionalDependency: no compiler, no
 * download at install). Where it is missing or does not load, vmpm uses zstd-codec; this module only
 * says whether it is there and compresses with it. Only codec.ts uses it (it chooses the path).
 *
 * Why this package (measured, README "Dependencies"): it honours the level and has a synchronous call,
 * which suits a compression worker thread. The compressor is a streaming one, so its frames do not
 * record their content size, which the bundle format requires: codec.ts adds the field.
 * Decompression stays on zstd-codec (this addon's decoder grows its output and was slower here).
 */
import { describeError } from '../util/errors';

export const NATIVE_PACKAGE = '@toondepauw/node-zstd';

interface NativeEncoder {
  encodeSync(data: Buffer): Buffer;
}
type EncoderClass = new (level: number) => NativeEncoder;

type Loaded = { encoder: EncoderClass; version: string } | { error: string };
let loaded: Loaded | undefined;

function load(): Loaded {
  try {
    // A plain require: the package is optional, so neither its types nor its presence can be assumed.
    const mod: unknown = require(NATIVE_PACKAGE);
    const encoder = (mod as { Encoder?: unknown } | null)?.Encoder;
    if (typeof encoder !== 'function') return { error: `${NATIVE_PACKAGE} has no Encoder class` };
    const pkg: unknown = require(`${NATIVE_PACKAGE}/package.json`);
    const version = (pkg as { version?: unknown } | null)?.version;
    return { encoder: encoder as EncoderClass, version: typeof version === 'string' ? version : 'unknown' };
  } catch (err) {
    // The addon's loader lists every candidate it tried; its first line says enough.
    return { error: describeError(err).split('\n')[0]! };
  }
}

/** The addon's version when it loads on this platform, or why it does not. Loaded once per thread. */
export function nativeZstd(): { version: string } | { error: string } {
  loaded ??= load();
  return 'error' in loaded ? { error: loaded.error } : { version: loaded.version };
}

const encoders = new Map<number, NativeEncoder>();

/**
 * One zstd frame of `data` at `level`, as the addon makes it: without a content size in its header
 * (codec.ts adds it). Throws when the addon is absent.
 */
export function nativeEncode(data: Uint8Array, level: number): Buffer {
  loaded ??= load();
  if ('error' in loaded) throw new Error(`${NATIVE_PACKAGE} is not available: ${loaded.error}`);
  let enc = encoders.get(level);
  if (!enc) {
    enc = new loaded.encoder(level);
    encoders.set(level, enc);
  }
  return enc.encodeSync(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}
