// Minimal types for the parts of zstd-codec 0.1.5 that vmpm uses (the package ships none).
// Only src/bundle/codec.ts may import it.
declare module 'zstd-codec' {
  export interface ZstdSimple {
    /** Returns null on failure; throws a string ("abort(OOM)...") when the 16 MiB wasm heap is exhausted. */
    compress(content: Uint8Array, level?: number): Uint8Array | null;
    /** Needs a frame with a content size; returns null on any failure or empty content. */
    decompress(frame: Uint8Array): Uint8Array | null;
  }
  export interface ZstdBinding {
    Simple: new () => ZstdSimple;
  }
  export const ZstdCodec: {
    run(onReady: (zstd: ZstdBinding) => void): void;
  };
}
