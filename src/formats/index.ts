/**
 * Other tools' byte formats (ELF cores now; kdump and QEMU's migration stream next): small bounded
 * parsers and writers on one bounds-checked byte reader, shared by capture, import, export and analysis.
 */
export { ByteReader, type ByteReaderOptions } from './byte-reader';
export { ByteSource } from './byte-source';
export { FormatError, type FormatErrorFields } from './errors';
export * as elf from './elf';
