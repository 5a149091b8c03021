// Capture: snapshot a quiesced QEMU guest into a bundle (library API used by the CLI and by watch).
export { capture, partialPathFor, type CaptureOptions, type CaptureResult } from './capture';
export { chooseMemoryMethod, snapshotBlocker, type RequestedMemoryMethod } from './snapshot-choice';
export { formatSummaryLine, type CaptureSummary } from './summary';
export { decideResume, shouldStop, isConsistent, type ResumeDecision } from './policy';
export { journalEventFromQmp, mergeJournal } from './evidence';
export { summaryFromBundle } from './summary-from-bundle';
