/**
 * Capped exponential backoff for reconnecting to a monitor that is not there yet or whose QEMU
 * restarted: 250 ms, 500 ms, 1 s ... up to the cap, with +-20 % jitter so many watchers restarted
 * together do not knock on QEMU in lock-step. `reset()` after a successful connection.
 */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  factor?: number;
  /** 0..1, fraction of the delay randomised either way (default 0.2). */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private failed = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 250;
    this.maxMs = options.maxMs ?? 10_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt; each call grows it until the cap. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    if (base < this.maxMs) this.attempt += 1;
    this.failed += 1;
    const spread = base * this.jitter * (this.random() * 2 - 1);
    return Math.max(0, Math.round(Math.min(this.maxMs, base + spread)));
  }

  /** Number of consecutive failed attempts so far (for logs). */
  get failures(): number {
    return this.failed;
  }

  reset(): void {
    this.attempt = 0;
    this.failed = 0;
  }
}

/** A sleep that an AbortSignal cuts short (resolves early, never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
