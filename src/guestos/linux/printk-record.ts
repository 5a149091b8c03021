/**
 * One kernel log record as both printk layouts store it, and what a reader reports besides the
 * records: which layout, where the ring is, how many records were skipped and why.
 */

export interface PrintkRecord {
  /** The kernel's sequence number (dmesg -x/--raw order). */
  seq: number;
  /** Monotonic time of the printk in nanoseconds (local_clock, as dmesg prints it). */
  tsNsec: bigint;
  /** Syslog level 0 (emerg) .. 7 (debug). */
  level: number;
  /** Syslog facility (0 kernel, 1 user for /dev/kmsg writes, ...). */
  facility: number;
  /** printk_info.flags: LOG_NEWLINE (2), LOG_CONT (8); older kernels also LOG_NOCONS (1), LOG_PREFIX (4). */
  flags: number;
  /** "T<pid>" or "C<cpu>" when the kernel recorded a caller (5.1+), else undefined. */
  caller?: string;
  /** The message as stored (no trailing newline; control bytes other than \n and \t escaped as \xNN). */
  text: string;
  /** dev_printk() context: SUBSYSTEM= and DEVICE= (the old dictionary), when present. */
  subsystem?: string;
  device?: string;
}

export const LOG_NEWLINE = 2;
export const LOG_CONT = 8;

export type SkipReason =
  | 'overwritten'
  | 'in-progress'
  /** Not a record: a released descriptor (never counted as skipped). */
  | 'free'
  | 'no-text'
  | 'bad-position'
  | 'text-overwritten'
  | 'bad-length'
  | 'bad-sequence';

export interface PrintkLog {
  /** 'printk_ringbuffer': the lockless ring of Linux 5.10+; 'log_buf': the older variable-length records. */
  layout: 'printk_ringbuffer' | 'log_buf';
  records: PrintkRecord[];
  /** Records present in the ring's live window but unreadable, by reason (never guessed at). */
  skipped: Partial<Record<SkipReason, number>>;
  skippedTotal: number;
  ring: {
    /** Kernel virtual address of the text buffer. */
    textAddress: bigint;
    textBytes: number;
    /** Descriptor slots (printk_ringbuffer only). */
    descriptors?: number;
    headId?: bigint;
    tailId?: bigint;
  };
  /** Records lost before the oldest one present (its seq, when the ring has wrapped). */
  firstSeq?: number;
}

/** Kernel text is bytes; show it as dmesg does: printable as is, other control bytes as \xNN. */
export function decodeText(bytes: Buffer): string {
  // eslint-disable-next-line no-control-regex
  return bytes.toString('utf8').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** printk_info.caller_id: bit 31 set = CPU number (interrupt context), else a task's pid. */
export function callerName(id: number): string | undefined {
  if (id === 0) return undefined;
  return id & 0x80000000 ? `C${id & 0x7fffffff}` : `T${id}`;
}
