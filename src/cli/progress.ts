/**
 * A one-line progress bar on stderr for long memory transfers: bytes, rate and ETA. Drawn only when
 * stderr is a TTY (never in pipes, logs or tests), redrawn at most 10 times a second, and erased when
 * done so the final summary line stands alone.
 */
import { humanBytes } from '../util/bytes';

export interface ProgressBar {
  update(p: { phase: string; done?: number; total?: number }): void;
  done(): void;
}

const WIDTH = 28;
const REDRAW_MS = 100;

export function createProgressBar(stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let started: number | undefined;
  let lastDraw = 0;
  let drawn = false;
  const clear = (): void => {
    if (drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  return {
    update(p) {
      const now = Date.now();
      if (now - lastDraw < REDRAW_MS && p.done !== p.total) return;
      lastDraw = now;
      if (p.phase !== 'memory' || p.total === undefined || p.total === 0) {
        clear();
        stream.write(`vmpm: ${p.phase}...`);
        drawn = true;
        return;
      }
      started ??= now;
      const done = p.done ?? 0;
      const fraction = Math.min(1, done / p.total);
      const filled = Math.round(fraction * WIDTH);
      const seconds = Math.max(0.001, (now - started) / 1000);
      const rate = done / seconds;
      const eta = rate > 0 ? (p.total - done) / rate : 0;
      const bar = `${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}`;
      clear();
      stream.write(
        `memory [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${humanBytes(done)}/${humanBytes(p.total)} ` +
          `${humanBytes(rate)}/s ETA ${eta.toFixed(0)}s`,
      );
      drawn = true;
    },
    done: clear,
  };
}
