/**
 * What chain-of-custody tools did to a bundle (slim, redact: src/custody), read back for info,
 * report, diff and verify, which say so first: an analyst must know before anything else that the
 * memory is absent or that parts of it were erased.
 */
import { readCustodySection, REDACTION_SECTION, SLIM_SECTION, type RedactionSection, type SlimSection } from '../bundle';
import type { AnalysisBundle } from './source';

export interface CustodyStatus {
  /** No memory contents: every page has its digest only (vmpm slim). */
  slim: SlimSection | null;
  redaction: RedactionSection | null;
  /** One line for the top of a report or info; null for an unmodified bundle. */
  headline: string | null;
  /** Short tag for titles: "SLIM", "REDACTED", "SLIM, REDACTED". */
  tag: string | null;
}

export async function custodyStatus(bundle: AnalysisBundle): Promise<CustodyStatus> {
  const slim: SlimSection | null = bundle.has(SLIM_SECTION) ? await readCustodySection(bundle, SLIM_SECTION) : null;
  const redaction: RedactionSection | null = bundle.has(REDACTION_SECTION) ? await readCustodySection(bundle, REDACTION_SECTION) : null;
  const isSlim = slim !== null || bundle.digestsOnly === true;
  const parts: string[] = [];
  const tags: string[] = [];
  if (isSlim) {
    tags.push('SLIM');
    parts.push(
      slim
        ? `SLIM bundle: page digests only, no memory contents${slim.omittedSections.length ? `, ${slim.omittedSections.length} attachment(s) left out` : ''} (made from ${slim.source.file}, SHA-256 ${slim.source.sha256.slice(0, 16)}…, by ${slim.by} at ${slim.at})`
        : 'SLIM bundle: page digests only, no memory contents',
    );
  }
  if (redaction && redaction.records.length > 0) {
    tags.push('REDACTED');
    const bytes = redaction.records.reduce((a, r) => a + r.erased.reduce((b, e) => b + BigInt(e.bytes), 0n), 0n);
    const pages = redaction.records.reduce((a, r) => a + r.pages.length, 0);
    const last = redaction.records[redaction.records.length - 1]!;
    const reasons = [...new Set(redaction.records.map((r) => r.reason).filter((r): r is string => r !== null))];
    parts.push(
      `REDACTED bundle: ${bytes} byte(s) erased (read as zeros) in ${pages} page(s)${reasons.length ? `, reason: ${reasons.join('; ')}` : ''} (by ${last.by} at ${last.at}; vmpm info --json lists the ranges and original page digests)`,
    );
  }
  return { slim, redaction, headline: parts.length ? parts.join('; ') : null, tag: tags.length ? tags.join(', ') : null };
}
