/**
 * libvirt's domain state and reason, as QEMU's run status. vmpm's policy, watch and state speak QMP
 * run states (query-status); libvirt tracks the same QEMU and names the same facts its own way
 * (virDomainState + reason, virsh's wording). The table keeps libvirt's text next to the mapping so
 * nothing is lost: `crashed (panicked)` is QEMU's `guest-panicked`, `paused (I/O error)` is `io-error`.
 */
import type { DomainState } from './domain';

export interface MappedStatus {
  status: string;
  running: boolean;
}

/** libvirt paused reasons (virsh's words) and the QEMU run state behind each. */
const PAUSED: Record<string, string> = {
  user: 'paused',
  unknown: 'paused',
  'I/O error': 'io-error',
  watchdog: 'watchdog',
  'starting up': 'prelaunch',
  migrating: 'postmigrate',
  'post-copy': 'postmigrate',
  'post-copy failed': 'postmigrate',
  saving: 'save-vm',
  dumping: 'save-vm',
  'creating snapshot': 'save-vm',
  'from snapshot': 'restore-vm',
  'shutting down': 'shutdown',
  // VIR_DOMAIN_PAUSED_CRASHED: what libvirt reports for QEMU's guest-panicked (e.g. after a daemon restart).
  crashed: 'guest-panicked',
  'api error': 'paused',
};

/**
 * The QMP status for a libvirt state; null when there is no QEMU to have one (shut off, or a state
 * libvirt only reports for stopped domains).
 */
export function qmpStatusOf(s: DomainState): MappedStatus | null {
  switch (s.state) {
    case 'running':
    case 'idle':
    case 'in shutdown':
    case 'blocked':
      return { status: 'running', running: true };
    case 'paused':
      return { status: PAUSED[s.reason] ?? 'paused', running: false };
    // on_crash=preserve: libvirt keeps QEMU (started with -no-shutdown) in its guest-panicked state.
    case 'crashed':
      return { status: 'guest-panicked', running: false };
    case 'pmsuspended':
      return { status: 'suspended', running: false };
    default:
      return null;
  }
}
