/**
 * JSON sections that record what chain-of-custody tools did to a bundle (docs/bundle-format.md,
 * "Slim bundles" and "Redacted bundles"). Written by src/custody; read by info, report and verify
 * so their output says a bundle is slim or redacted. 64-bit values are "0x..." strings.
 */
import type { Hex } from '../util/hex';

export const SLIM_SECTION = 'slim';
export const REDACTION_SECTION = 'redaction';

/** Who did it and where: `user@host`, the vmpm version, an ISO time. */
export interface CustodyActor {
  by: string;
  vmpmVersion: string;
  at: string;
}

export interface SourceBundle {
  file: string;
  sha256: string;
  size: number;
}

export interface SlimSection extends CustodyActor {
  source: SourceBundle;
  /** What the slim bundle leaves out: always "memory contents"; "attachments" with --no-attachments. */
  omitted: string[];
  /** Sections left out, by name. */
  omittedSections: string[];
  pages: number;
  dataPages: number;
}

export interface RedactionRecord extends CustodyActor {
  source: SourceBundle;
  reason: string | null;
  /** What was asked for: "range 0x..-0x..", "virt 0x..-0x.. (cpu 0, cr3 0x...)", "pattern /re/". */
  requests: string[];
  /** Every erased guest-physical byte range [start, end), merged and sorted. */
  erased: Array<{ start: Hex; end: Hex; bytes: Hex }>;
  /** Each page that was changed: its address and its digest in the source bundle. */
  pages: Array<{ addr: Hex; originalSha256: string }>;
}

export interface RedactionSection {
  /** One record per `vmpm redact` run, oldest first (redacting a redacted bundle appends). */
  records: RedactionRecord[];
}
