/**
 * One line of a QMP conversation, verbatim. Declared in the leaf layer because two layers share it:
 * qmp records it, the bundle's `qmp-transcript` section stores it.
 */
export interface TranscriptEntry {
  /** ISO time with microseconds where known. */
  at: string;
  /** tx: sent by vmpm; rx: received from QEMU (replies, events, greeting). */
  dir: 'tx' | 'rx';
  line: string;
}
