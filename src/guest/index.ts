// Built-in known-answer guests and the QEMU launcher used by tests and `vmpm demo`.
export { findQemu, type GuestArch } from './find-qemu';
export { launchQemu, startQemu, escapeQemuOptionValue, type LaunchOptions, type LaunchedQemu } from './launch';
export { launchBootSectorGuest, BOOT_SECTOR_IMAGE } from './boot-sector';
export { launchCounterGuest, launchFillGuest, COUNTER_MARKER, COUNTER_PAGES } from './snapshot-guests';
export { BOOT_SECTOR_ANSWERS, type KnownAnswers } from './answers';
