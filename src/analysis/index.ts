// Analysis layer: plain typed data (and report strings) from bundles; no CLI concerns.
export * from './ranges';
export * from './source';
export * from './sections';
export * from './open';
export { buildInfo, instructionPointer, type InfoModel } from './info';
export { buildRegs, type RegsModel, type RegsCpu } from './regs';
export { buildMemmap, type MemmapModel } from './memmap';
export { readMemory, readSmall, firstHole } from './read';
export { searchBundle, parseHexPattern, REGEX_MAX_MATCH, type SearchPattern, type SearchModel, type SearchMatch } from './search';
export { buildErrors, buildEvents, eventSummary, type ErrorsModel, type EventsModel } from './timeline';
export { buildDiff, diffPageIndexes, diffCpus, diffMemmap, type DiffModel } from './diff';
export * from './report/index';
export { humanBytes } from './report/format';
export { readSection, type SectionContent } from './section';
