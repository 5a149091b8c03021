/** What tests can see of vmpm's memory FIFO directories (src/capture/fifo.ts: TMPDIR/vmpm-fifo-*). */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** A FIFO directory in `tmp` with a FIFO in it: the capture is in its memory phase, near the moment its writer opens the FIFO. */
export function fifoMade(tmp: string): boolean {
  return readdirSync(tmp).some((n) => {
    try {
      return n.startsWith('vmpm-fifo-') && readdirSync(join(tmp, n)).length > 0;
    } catch {
      return false; // removed meanwhile
    }
  });
}
