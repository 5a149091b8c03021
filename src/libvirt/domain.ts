/**
 * Facts about a libvirt domain, from libvirt's own API through virsh: `domstate --reason`, `dominfo`,
 * `version --daemon`, `dumpxml` (the live XML: what libvirt made of the domain's configuration).
 * Parsers are small and tolerant of extra lines; each keeps what it cannot parse out of the answer.
 */
import { LibvirtError } from './errors';
import type { Virsh } from './virsh';

export interface DomainState {
  /** libvirt's state word as virsh prints it: running, paused, crashed, shut off, pmsuspended, ... */
  state: string;
  /** libvirt's reason: booted, user, panicked, I/O error, ... ("unknown" when libvirt gives none). */
  reason: string;
  /** As virsh prints it: `crashed (panicked)`. */
  text: string;
}

export interface DomainInfo {
  name: string;
  uuid: string;
  /** Domain id while it runs, null when shut off. */
  id: number | null;
  persistent: boolean | null;
}

export interface Versions {
  /** The running libvirtd's version (virsh version --daemon: "Running against daemon"). */
  libvirt: string | null;
  /** The hypervisor libvirt runs ("Running hypervisor: QEMU 7.2.22"). */
  qemu: string | null;
  /** The client library virsh uses. */
  library: string | null;
}

/** What the live domain XML says about post-mortem readiness (README "Preparing a libvirt domain"). */
export interface DomainConfig {
  type: string | null;
  arch: string | null;
  machine: string | null;
  onCrash: string | null;
  panicModels: string[];
  vmcoreinfo: boolean;
  /** Disks (target dev) and their error_policy / rerror_policy. */
  disks: Array<{ target: string; errorPolicy: string | null; rerrorPolicy: string | null }>;
}

/** `virsh domstate --reason` output: "crashed (panicked)", "shut off (destroyed)", "running (booted)". */
export function parseDomState(text: string): DomainState {
  const line = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  const m = /^(.+?)\s*\(([^()]*)\)$/.exec(line);
  if (m) return { state: m[1]!, reason: m[2]!, text: line };
  if (line === '') throw new LibvirtError('virsh domstate printed nothing', 'failed', text);
  return { state: line, reason: 'unknown', text: line };
}

/** `virsh dominfo`: "Key:   value" lines. */
export function parseDomInfo(text: string): DomainInfo {
  const fields = keyValues(text);
  const name = fields.get('Name');
  const uuid = fields.get('UUID');
  if (name === undefined || uuid === undefined) throw new LibvirtError('virsh dominfo did not name the domain and its UUID', 'failed', text);
  const id = fields.get('Id');
  const persistent = fields.get('Persistent');
  return {
    name,
    uuid,
    id: id !== undefined && /^\d+$/.test(id) ? Number(id) : null,
    persistent: persistent === 'yes' ? true : persistent === 'no' ? false : null,
  };
}

/** `virsh version --daemon`. */
export function parseVersions(text: string): Versions {
  const fields = keyValues(text);
  const hyper = fields.get('Running hypervisor');
  return {
    libvirt: fields.get('Running against daemon') ?? null,
    qemu: hyper !== undefined ? (/QEMU\s+(\S+)/.exec(hyper)?.[1] ?? hyper) : null,
    library: fields.get('Using library')?.replace(/^libvirt\s+/, '') ?? null,
  };
}

function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/**
 * The few things vmpm reads from the domain XML. Attribute scraping, not a general XML parser: libvirt
 * writes this XML itself, in a fixed style (single quotes, one element per line).
 */
export function parseDomainConfig(xml: string): DomainConfig {
  const attr = (tag: string, name: string): string | null => {
    const m = new RegExp(`<${tag}\\b[^>]*\\s${name}=['"]([^'"]*)['"]`).exec(xml);
    return m ? m[1]! : null;
  };
  const disks: DomainConfig['disks'] = [];
  for (const m of xml.matchAll(/<disk\b[\s\S]*?<\/disk>/g)) {
    const d = m[0];
    const target = /<target\b[^>]*\sdev=['"]([^'"]+)['"]/.exec(d)?.[1];
    if (target === undefined) continue;
    const driver = /<driver\b[^>]*>/.exec(d)?.[0] ?? '';
    disks.push({
      target,
      errorPolicy: /\serror_policy=['"]([^'"]+)['"]/.exec(driver)?.[1] ?? null,
      rerrorPolicy: /\srerror_policy=['"]([^'"]+)['"]/.exec(driver)?.[1] ?? null,
    });
  }
  return {
    type: attr('domain', 'type'),
    arch: attr('type', 'arch'),
    machine: attr('type', 'machine'),
    onCrash: /<on_crash>\s*([^<\s]+)\s*<\/on_crash>/.exec(xml)?.[1] ?? null,
    panicModels: [...xml.matchAll(/<panic\b[^>]*\smodel=['"]([^'"]+)['"]/g)].map((m) => m[1]!),
    vmcoreinfo: /<vmcoreinfo\b[^>]*\sstate=['"]on['"]/.test(xml),
    disks,
  };
}

/** What a post-mortem loses on this domain, in libvirt's terms (empty when it is prepared). */
export function readinessWarnings(c: DomainConfig): string[] {
  const out: string[] = [];
  if (c.panicModels.length === 0) out.push("no <panic> device: a guest kernel panic is not reported (add <panic model='isa'/>, or model='pvpanic' on aarch64)");
  if (c.onCrash !== null && c.onCrash !== 'preserve') out.push(`<on_crash>${c.onCrash}</on_crash>: libvirt will not keep a panicked guest for capture (use preserve)`);
  if (c.onCrash === null && c.panicModels.length > 0) out.push('no <on_crash>: libvirt destroys a panicked guest by default (use <on_crash>preserve</on_crash>)');
  if (!c.vmcoreinfo) out.push("no <vmcoreinfo state='on'/>: the guest kernel cannot publish VMCOREINFO");
  return out;
}

export async function domainState(virsh: Virsh, domain: string): Promise<DomainState> {
  return parseDomState(await virsh.run(['domstate', domain, '--reason']));
}

export async function domainInfo(virsh: Virsh, domain: string): Promise<DomainInfo> {
  return parseDomInfo(await virsh.run(['dominfo', domain]));
}

export async function versions(virsh: Virsh): Promise<Versions> {
  return parseVersions(await virsh.run(['version', '--daemon']));
}

export async function domainConfig(virsh: Virsh, domain: string): Promise<DomainConfig> {
  return parseDomainConfig(await virsh.run(['dumpxml', domain]));
}

/** Names of the running domains of the connection (`virsh list --name`). */
export async function runningDomains(virsh: Virsh): Promise<string[]> {
  const out = await virsh.run(['list', '--name']);
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}
