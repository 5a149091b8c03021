/**
 * A full garbage collection on demand, for long streaming passes (vmpm redact) whose garbage is
 * almost all Buffers outside the V8 heap: V8 only collects when that external memory has grown by
 * tens of MiB, and glibc keeps the freed 1 MiB chunks in its arenas, so the peak RSS creeps up
 * (measured on a 4 GiB redact: ~25 MiB more without it, README Performance). Node exposes `gc`
 * only with --expose-gc; turning the flag on at run time and taking the function from a fresh
 * context is the one way to get it without changing how vmpm is started. If that ever fails, this is
 * a no-op: the pass still works, with the higher peak.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const fn: unknown = runInNewContext('gc');
      collect = typeof fn === 'function' ? (fn as () => void) : null;
    } catch {
      collect = null;
    }
  }
  collect?.();
}
