/**
 * Where a command finds its VM: `--qmp ENDPOINT` (QEMU's own monitor socket) or `--libvirt DOMAIN
 * [--connect URI]` (a libvirt domain, through virsh). One parser and one connector for capture,
 * state and qmp, so the rules are the same everywhere: exactly one of the two, --connect only with
 * --libvirt, and a plain socket to a libvirt-run QEMU gets the dump guard (src/libvirt/guard.ts).
 */
import type { Command } from 'commander';
import { connectLibvirt, connectQmpGuarded, libvirtEndpoint, type LibvirtTarget } from '../../libvirt';
import { formatEndpoint, parseEndpoint, type ConnectOptions, type Endpoint, type QmpClient } from '../../qmp';
import { UsageError } from '../../util/errors';

export interface TargetOptions {
  qmp?: string;
  libvirt?: string;
  connect?: string;
}

export type Target = { kind: 'qmp'; endpoint: Endpoint } | { kind: 'libvirt'; target: LibvirtTarget };

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--qmp <endpoint>', 'QMP monitor: unix:PATH, a socket path, or tcp:HOST:PORT')
    .option('--libvirt <domain>', 'a libvirt domain (name, UUID or id), reached through virsh')
    .option('--connect <uri>', 'libvirt connection URI for --libvirt (default: virsh\'s, e.g. qemu:///system)');
}

export function targetFrom(o: TargetOptions): Target {
  if (o.qmp !== undefined && o.libvirt !== undefined) throw new UsageError('--qmp and --libvirt name two different ways to the VM; choose one');
  if (o.connect !== undefined && o.libvirt === undefined) throw new UsageError('--connect URI goes with --libvirt DOMAIN');
  if (o.libvirt !== undefined) {
    if (o.libvirt.trim() === '') throw new UsageError('--libvirt needs a domain name');
    return { kind: 'libvirt', target: o.connect !== undefined ? { domain: o.libvirt, uri: o.connect } : { domain: o.libvirt } };
  }
  if (o.qmp === undefined) throw new UsageError('one of --qmp ENDPOINT or --libvirt DOMAIN is required');
  return { kind: 'qmp', endpoint: parseEndpoint(o.qmp) };
}

export function targetLabel(t: Target): string {
  return t.kind === 'qmp' ? formatEndpoint(t.endpoint) : libvirtEndpoint(t.target);
}

export interface Session {
  client: QmpClient;
  /** Set when a plain QMP socket leads to a QEMU that libvirt runs (the evidence). */
  libvirtOwned?: string;
}

export async function openSession(t: Target, options: ConnectOptions = {}): Promise<Session> {
  if (t.kind === 'libvirt') return { client: (await connectLibvirt(t.target, options)).client };
  const s = await connectQmpGuarded(t.endpoint, options);
  return s.libvirtOwned === undefined ? { client: s.client } : { client: s.client, libvirtOwned: s.libvirtOwned };
}
