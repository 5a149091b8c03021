/** An asynchronous QMP event as received, plus when vmpm read it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  /** QEMU's host wall clock at emission ({-1,-1} if QEMU could not read it). */
  timestamp: { seconds: number; microseconds: number };
  receivedAt: Date;
}

export interface QmpGreeting {
  version: { qemu: { major: number; minor: number; micro: number }; package: string };
  capabilities: string[];
}

export type { TranscriptEntry } from '../util/transcript';
