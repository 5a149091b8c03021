/**
 * Faults the guest kernel reported in its own log, as structured records: machine checks (with the
 * bank status decoded), block I/O errors, EXT4 errors, soft and hard lockups, hung tasks, OOM kills,
 * oopses, unknown NMIs and the panic itself. Each pattern is the kernel's own format string (Linux 6.1:
 * arch/x86/kernel/cpu/mce/core.c __print_mce, block/blk-mq.c blk_print_req_error, fs/buffer.c,
 * fs/ext4/super.c __ext4_error, kernel/watchdog.c, kernel/hung_task.c, mm/oom_kill.c, arch/x86/mm/fault.c,
 * arch/x86/kernel/nmi.c, kernel/panic.c). A line that does not match exactly is not a record.
 */
import { toHex } from '../../util/hex';
import { decodeMcStatus, type McStatus } from './mce';
import type { PrintkRecord } from './printk-record';

export type KernelFaultKind =
  | 'machine-check'
  | 'io-error'
  | 'ext4-error'
  | 'soft-lockup'
  | 'hard-lockup'
  | 'hung-task'
  | 'oom-kill'
  | 'oops'
  | 'unknown-nmi'
  | 'panic';

export interface MachineCheck {
  cpu: number;
  bank: number;
  /** MCG_STATUS (the hex after "Machine Check Exception:"). */
  mcgStatus: bigint;
  status: McStatus;
  /** The interrupted instruction, when the kernel printed a RIP line. */
  rip?: bigint;
  cs?: number;
  /** "!INEXACT!": MCG_STATUS.EIPV clear, the RIP is not exactly where it happened. */
  ripInexact?: boolean;
  /** The kernel's own symbolization of RIP ("native_safe_halt+0xb/0x10"), when it printed one. */
  ripSymbol?: string;
  /** MCi_ADDR / MCi_MISC, printed only when ADDRV / MISCV are set. */
  addr?: bigint;
  misc?: bigint;
  tsc?: bigint;
  /** "Machine check: Processor Context Corrupt": the kernel's reason for its panic. */
  verdict?: string;
}

export interface KernelFault {
  kind: KernelFaultKind;
  severity: 'critical' | 'error' | 'warning';
  /** One line: "machine check on CPU 0 bank 1: status 0xb200000000000175 (VAL UC EN PCC) ...". */
  summary: string;
  /** The first record's seq and timestamp (ns since boot). */
  seq: number;
  tsNsec: bigint;
  device?: string;
  /** The log lines it was built from. */
  lines: string[];
  mce?: MachineCheck;
}

const HW = 'mce: [Hardware Error]: ';
const MCE_HEAD = /^CPU (\d+): Machine Check( Exception)?: ([0-9a-f]+) Bank (\d+): ([0-9a-f]{1,16})$/;
const MCE_RIP = /^RIP( !INEXACT!)? ([0-9a-f]{2}):<([0-9a-f]{16})>\s*(?:\{([^}]*)\})?\s*$/;
const MCE_TSC = /^TSC ([0-9a-f]+)(?: ADDR ([0-9a-f]+))?(?: MISC ([0-9a-f]+))?/;
const MCE_VERDICT = /^Machine check: (.+)$/;

interface Pattern {
  kind: Exclude<KernelFaultKind, 'machine-check'>;
  re: RegExp;
  severity: KernelFault['severity'];
  summary: (m: RegExpExecArray) => string;
  device?: (m: RegExpExecArray) => string;
}

const PATTERNS: Pattern[] = [
  {
    kind: 'io-error',
    re: /^(?:blk_update_request: )?(I\/O|critical medium|recoverable transport|critical target|critical nexus|timeout|critical space allocation|protection|operation not supported) error, dev (\S+), sector (\d+)(?: op (0x[0-9a-f]+):\((\w+)\))?/,
    severity: 'error',
    summary: (m) => `${m[1]} error on ${m[2]}, sector ${m[3]}${m[5] ? ` (${m[5]})` : ''}`,
    device: (m) => m[2]!,
  },
  {
    kind: 'io-error',
    re: /^Buffer I\/O error on dev (\S+), logical block (\d+)(?:, (.+))?$/,
    severity: 'error',
    summary: (m) => `buffer I/O error on ${m[1]}, logical block ${m[2]}${m[3] ? ` (${m[3]})` : ''}`,
    device: (m) => m[1]!,
  },
  {
    kind: 'ext4-error',
    re: /^EXT4-fs error \(device ([^)]+)\): (.+)$/,
    severity: 'error',
    summary: (m) => `EXT4-fs error on ${m[1]}: ${m[2]}`,
    device: (m) => m[1]!,
  },
  {
    kind: 'soft-lockup',
    re: /^watchdog: BUG: soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.+)\]$/,
    severity: 'error',
    summary: (m) => `soft lockup: CPU ${m[1]} stuck for ${m[2]} s in ${m[3]}`,
  },
  {
    kind: 'hard-lockup',
    re: /^(?:watchdog: )?Watchdog detected hard LOCKUP on cpu (\d+)/,
    severity: 'critical',
    summary: (m) => `hard lockup on CPU ${m[1]}`,
  },
  {
    kind: 'hung-task',
    re: /^INFO: task (.+):(\d+) blocked for more than (\d+) seconds\.$/,
    severity: 'warning',
    summary: (m) => `task ${m[1]} (pid ${m[2]}) blocked for more than ${m[3]} s`,
  },
  {
    kind: 'oom-kill',
    re: /^(Memory cgroup out of memory|Out of memory): Killed process (\d+) \(([^)]*)\)/,
    severity: 'error',
    summary: (m) => `${m[1] === 'Out of memory' ? 'OOM' : 'memory cgroup OOM'} killed process ${m[2]} (${m[3]})`,
  },
  {
    kind: 'oops',
    re: /^Oops: ([0-9a-f]{4}) \[#(\d+)\]/,
    severity: 'error',
    summary: (m) => `kernel oops #${m[2]} (error code ${m[1]})`,
  },
  {
    kind: 'oops',
    re: /^BUG: (unable to handle page fault for address: [0-9a-f]+|kernel NULL pointer dereference, address: [0-9a-f]+)$/,
    severity: 'error',
    summary: (m) => `kernel BUG: ${m[1]}`,
  },
  {
    kind: 'unknown-nmi',
    re: /^Uhhuh\. NMI received for unknown reason ([0-9a-f]+) on CPU (\d+)\.$/,
    severity: 'warning',
    summary: (m) => `NMI for unknown reason ${m[1]} on CPU ${m[2]}`,
  },
  {
    kind: 'panic',
    re: /^Kernel panic - not syncing: (.*)$/,
    severity: 'critical',
    summary: (m) => `kernel panic: ${m[1]}`,
  },
];

/** The faults in a kernel log, in log order. Bounded by the log (one pass, at most one record per line). */
export function kernelFaults(records: readonly PrintkRecord[]): KernelFault[] {
  const out: KernelFault[] = [];
  let mce: KernelFault | undefined;
  for (const r of records) {
    const line = r.text;
    if (line.startsWith(HW)) {
      const body = line.slice(HW.length);
      const head = MCE_HEAD.exec(body);
      if (head) {
        mce = machineCheck(r, head);
        out.push(mce);
        continue;
      }
      if (mce && mce.mce) addMceLine(mce, mce.mce, body, line);
      continue;
    }
    mce = undefined;
    for (const p of PATTERNS) {
      const m = p.re.exec(line);
      if (!m) continue;
      out.push({ kind: p.kind, severity: p.severity, summary: p.summary(m), seq: r.seq, tsNsec: r.tsNsec, lines: [line], ...(p.device ? { device: p.device(m) } : {}) });
      break;
    }
  }
  for (const f of out) if (f.mce) f.summary = mceSummary(f.mce);
  return out;
}

function machineCheck(r: PrintkRecord, m: RegExpExecArray): KernelFault {
  const status = decodeMcStatus(BigInt(`0x${m[5]}`));
  const mc: MachineCheck = { cpu: Number(m[1]), bank: Number(m[4]), mcgStatus: BigInt(`0x${m[3]}`), status };
  return { kind: 'machine-check', severity: status.severity, summary: '', seq: r.seq, tsNsec: r.tsNsec, lines: [r.text], mce: mc };
}

function addMceLine(fault: KernelFault, mc: MachineCheck, body: string, line: string): void {
  fault.lines.push(line);
  const rip = MCE_RIP.exec(body);
  if (rip) {
    mc.rip = BigInt(`0x${rip[3]}`);
    mc.cs = parseInt(rip[2]!, 16);
    mc.ripInexact = rip[1] !== undefined;
    if (rip[4]) mc.ripSymbol = rip[4];
    return;
  }
  const tsc = MCE_TSC.exec(body);
  if (tsc) {
    mc.tsc = BigInt(`0x${tsc[1]}`);
    if (tsc[2]) mc.addr = BigInt(`0x${tsc[2]}`);
    if (tsc[3]) mc.misc = BigInt(`0x${tsc[3]}`);
    return;
  }
  const verdict = MCE_VERDICT.exec(body);
  if (verdict) mc.verdict = verdict[1]!;
}

function mceSummary(mc: MachineCheck): string {
  const s = mc.status;
  const where = mc.rip !== undefined ? `, RIP ${toHex(mc.rip)}${mc.ripSymbol ? ` <${mc.ripSymbol}>` : ''}${mc.ripInexact ? ' (inexact)' : ''}` : '';
  const addr = mc.addr !== undefined ? `, address ${toHex(mc.addr)}` : s.addrv ? '' : ', no address (ADDRV clear)';
  return `machine check on CPU ${mc.cpu} bank ${mc.bank}: status ${toHex(s.status)} (${s.flags.join(' ')}; ${s.description})${addr}${where}${mc.verdict ? `: ${mc.verdict}` : ''}`;
}
