import type { TranscriptEntry } from './types';

/**
 * Every line sent and received, verbatim and timestamped, kept as provenance for bundles. Bounded by
 * entry count (oldest dropped) so a long `watch` session cannot grow without limit.
 */
export class Transcript {
  private entries: TranscriptEntry[] = [];
  private head = 0;
  private droppedCount = 0;

  constructor(private readonly maxEntries = 100_000) {}

  record(dir: 'tx' | 'rx', line: string, at: Date = new Date()): void {
    this.entries.push({ at: at.toISOString(), dir, line });
    if (this.entries.length - this.head > this.maxEntries) {
      this.head++;
      this.droppedCount++;
      // Compact occasionally instead of shifting on every push.
      if (this.head > 1024 && this.head * 2 > this.entries.length) {
        this.entries = this.entries.slice(this.head);
        this.head = 0;
      }
    }
  }

  snapshot(): TranscriptEntry[] {
    return this.entries.slice(this.head).map((e) => ({ ...e }));
  }

  get dropped(): number {
    return this.droppedCount;
  }
}
