/**
 * `vmpm diff`'s kernel-log part: the records the guest kernel logged between two captures of the same
 * boot. Same boot means same kernel (release, build id, KASLR offset) and at least one record present
 * in both with the same sequence number, timestamp and text; then B's records after A's last one are
 * new. Records B no longer holds (the ring wrapped) are counted, not invented.
 */
import type { GuestKernelFacts } from './guest-kernel';
import type { KlogRecord } from './klog';

export type KernelLogDiff =
  | { compared: false; reason: string }
  | {
      compared: true;
      sameBoot: boolean;
      /** Why the two logs are (not) the same boot. */
      basis: string;
      /** B's records after A's newest one (same boot only). */
      newRecords: KlogRecord[];
      /** A's records B no longer holds (overwritten as the ring wrapped). */
      lostFromB: number;
    };

export function diffKernelLogs(a: GuestKernelFacts, b: GuestKernelFacts): KernelLogDiff {
  if (!a.available) return { compared: false, reason: `A: ${a.reason}` };
  if (!b.available) return { compared: false, reason: `B: ${b.reason}` };
  const ids = (k: typeof a): string => `${k.release ?? '?'} ${k.buildId ?? ''} ${k.kaslrOffset ?? ''}`.trim();
  if (ids(a) !== ids(b)) return { compared: true, sameBoot: false, basis: `different kernels (A ${ids(a)}, B ${ids(b)})`, newRecords: [], lostFromB: 0 };
  const bySeq = new Map(b.log.map((r) => [r.seq, r]));
  const same = (r: KlogRecord): boolean => {
    const o = bySeq.get(r.seq);
    return o !== undefined && o.tsNsec === r.tsNsec && o.text === r.text;
  };
  const common = a.log.filter(same);
  const differing = a.log.filter((r) => bySeq.has(r.seq) && !same(r));
  if (common.length === 0 || differing.length > 0) {
    return { compared: true, sameBoot: false, basis: common.length === 0 ? 'no kernel log record in common: a different boot' : `${differing.length} records with the same sequence number differ: a different boot`, newRecords: [], lostFromB: 0 };
  }
  const lastSeq = a.log.length > 0 ? a.log[a.log.length - 1]!.seq : -1;
  const newRecords = b.log.filter((r) => r.seq > lastSeq);
  return {
    compared: true,
    sameBoot: true,
    basis: `same kernel, ${common.length} records identical in both`,
    newRecords,
    lostFromB: a.log.filter((r) => !bySeq.has(r.seq)).length,
  };
}
