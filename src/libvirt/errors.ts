/**
 * virsh's failures as one line a user can act on. virsh prints several `error:` lines, the useful one
 * rarely first ("failed to connect to the hypervisor" comes last, the reason before it); the classes
 * below are what `vmpm state --libvirt` and `watch --libvirt` need to tell apart: no such domain,
 * no libvirtd to talk to, not allowed to talk to it, anything else.
 */
import { VmpmError } from '../util/errors';

export type LibvirtErrorKind = 'no-domain' | 'not-running' | 'unreachable' | 'permission' | 'failed';

export class LibvirtError extends VmpmError {
  readonly kind: LibvirtErrorKind;
  /** virsh's own error lines, verbatim. */
  readonly detail: string;
  constructor(message: string, kind: LibvirtErrorKind, detail: string) {
    super(message);
    this.name = 'LibvirtError';
    this.kind = kind;
    this.detail = detail;
  }
}

/** The `error: ...` lines of virsh's stderr, without the prefix. */
export function virshErrorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('error:'))
    .map((l) => l.slice(6).trim())
    .filter((l) => l !== '');
}

export function virshFailure(command: string, r: { stderr: string; code: number }, uri: string | undefined): LibvirtError {
  const lines = virshErrorLines(r.stderr);
  const detail = lines.join('; ') || r.stderr.trim() || `exit ${r.code}`;
  const where = uri ?? 'the default libvirt connection';
  const domain = /failed to get domain '([^']*)'|Domain not found: no domain with matching (?:name|uuid) '([^']*)'/.exec(detail);
  if (domain) return new LibvirtError(`libvirt domain ${JSON.stringify(domain[1] ?? domain[2])} not found on ${where}`, 'no-domain', detail);
  if (/domain is not running|Requested operation is not valid: domain is not running/i.test(detail)) {
    return new LibvirtError(`libvirt domain is not running (${firstReason(lines)})`, 'not-running', detail);
  }
  const socket = /Failed to connect socket to '([^']*)': (No such file or directory|Connection refused)/.exec(detail);
  if (socket) {
    return new LibvirtError(`libvirtd is not running (no daemon at ${socket[1]} for ${where}: ${socket[2]})`, 'unreachable', detail);
  }
  if (/Permission denied|authentication (?:unavailable|failed)|not authorized|access denied|operation forbidden|polkit|Unable to get system bus connection/i.test(detail)) {
    return new LibvirtError(`permission denied by libvirt on ${where} (${firstReason(lines)}); run as root or as a member of the libvirt group`, 'permission', detail);
  }
  if (/failed to connect to the hypervisor|no connection driver available|Cannot recv data|End of file while reading data|client socket is closed/i.test(detail)) {
    return new LibvirtError(`cannot connect to libvirt at ${where} (${firstReason(lines)})`, 'unreachable', detail);
  }
  return new LibvirtError(`${command} failed: ${detail}`, 'failed', detail);
}

/** The most specific of virsh's error lines: the generic "failed to connect to the hypervisor" comes last. */
function firstReason(lines: string[]): string {
  return lines.find((l) => !/^failed to connect to the hypervisor$/.test(l)) ?? lines[0] ?? 'no reason given';
}
