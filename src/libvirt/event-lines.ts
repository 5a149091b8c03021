/**
 * Parsers for the two event streams virsh prints (libvirt 9.0's wording, tools/virsh-domain-event.c
 * and virsh-domain.c):
 *
 *   virsh qemu-monitor-event [DOM] --loop   (no --timestamp, no --pretty: QEMU's own clock, one line)
 *     event GUEST_PANICKED at 1796113394.121675 for domain 'vmpm-x1': {"action":"pause"}
 *     event STOP at 1796113394.122093 for domain 'vmpm-x1': <null>
 *
 *   virsh event [DOM] --all --loop          (libvirt's own domain events)
 *     event 'lifecycle' for domain 'vmpm-x1': Crashed Panicked
 *     event 'watchdog' for domain 'vmpm-x1': pause
 *
 * Anything else on stdout (the "events received: N" summary, blank lines) parses to undefined.
 */
import { parseJson } from '../qmp';

export interface QemuEventLine {
  domain: string;
  event: string;
  seconds: number;
  microseconds: number;
  data?: Record<string, unknown>;
}

export interface DomainEventLine {
  domain: string;
  /** libvirt's event kind: lifecycle, reboot, watchdog, io-error, job-completed, ... */
  kind: string;
  /** The rest of the line as virsh printed it ("Crashed Panicked"). */
  detail: string;
}

const QEMU_EVENT = /^event (\S+) at (\d+)\.(\d+) for domain '(.*?)': (.*)$/;
const DOMAIN_EVENT = /^event '([^']+)' for domain '(.*?)'(?:: ?(.*))?$/;

export function parseQemuEventLine(line: string): QemuEventLine | undefined {
  const m = QEMU_EVENT.exec(line.trimEnd());
  if (!m) return undefined;
  const out: QemuEventLine = { event: m[1]!, seconds: Number(m[2]), microseconds: Number(m[3]!.padEnd(6, '0').slice(0, 6)), domain: m[4]! };
  const raw = m[5]!.trim();
  if (raw !== '<null>' && raw !== '') {
    try {
      const v = parseJson(raw);
      out.data = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
    } catch {
      out.data = { unparsed: raw };
    }
  }
  return out;
}

export function parseDomainEventLine(line: string): DomainEventLine | undefined {
  const m = DOMAIN_EVENT.exec(line.trimEnd());
  if (!m) return undefined;
  return { kind: m[1]!, domain: m[2]!, detail: (m[3] ?? '').trim() };
}

/** `Crashed Panicked` -> { event: 'Crashed', detail: 'Panicked' } (the detail may have several words). */
export function splitLifecycle(detail: string): { event: string; detail: string } {
  const i = detail.indexOf(' ');
  return i < 0 ? { event: detail, detail: '' } : { event: detail.slice(0, i), detail: detail.slice(i + 1) };
}
