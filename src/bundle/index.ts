// The bundle layer: format v1 writer and reader (docs/bundle-format.md), and the JSON section schema.
export { BundleWriter, type WriterOptions, type MemoryRangeStats, type MemoryRangeWriter } from './writer';
export { PlacedRangesWriter } from './placed-ranges';
export { BundleReader, fileSha256, type SectionInfo, type RangeInfo, type BundleStats, type VerifyResult } from './reader';
export type { PageStreamOptions, StreamedPage, StreamStats } from './page-stream';
export { BundleFormatError, CodecError } from './errors';
export { PAGE_SIZE, FORMAT_MAJOR, FORMAT_MINOR } from './format';
export { ZERO_PAGE_DIGEST } from './pages';
export { compressMemoryIndex, encodeMemoryIndex, type MemoryTables } from './memory-index';
export * from './schema';
export * from './custody-schema';
export { readJsonSection, type SectionTypes, MAX_JSON_SECTION_BYTES, MAX_JSON_VALUES, MAX_JSON_DEPTH } from './validate';
