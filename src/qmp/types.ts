/** An asynchronous QMP event as received, plus when vmpm read it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  /** QEMU's host wall clock at emission ({-1,-1} if QEMU could not read it). */
  timestamp: { seconds: number; microseconds: number };
  receivedAt: Date;
}

/**
 * What the session knows of the peer: the QMP greeting's fields. `capabilities` is absent when the
 * transport does not pass the greeting on (libvirt reads it itself); the version then comes from
 * `query-version`.
 */
export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities?: string[];
}

export type { TranscriptEntry } from '../util/transcript';
