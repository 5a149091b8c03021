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
export { openKernelView, type KernelView, type KernelViewOptions, type LoadedSymbols } from './kernel';
export { buildTranslate, translationModel, type TranslateModel } from './translate';
export { buildSymbol, parseSymbolQuery, type SymbolModel, type SymbolSourceModel } from './symbol';
export { buildStack, buildGuestStacks, STACK_SCAN_NOTE, type StackModel, type StackCpuModel, type StackFrameModel } from './stack';
