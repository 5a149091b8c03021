import { VmpmError } from '../util/errors';

/**
 * A bundle file is not what the format says it must be: bad magic, a count or offset that does not
 * fit the file, a digest that does not match. The message names the part of the file (header,
 * footer, trailer, section "x", frame N, page at 0x...) and what was expected versus found.
 */
export class BundleFormatError extends VmpmError {
  constructor(message: string) {
    super(message);
    this.name = 'BundleFormatError';
  }
}

/**
 * zstd compression or decompression failed (zstd-codec throws strings, returns null, or aborts on
 * its fixed 16 MiB heap): the message says which operation and why.
 */
export class CodecError extends VmpmError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'CodecError';
  }
}
