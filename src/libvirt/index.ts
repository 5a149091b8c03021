// libvirt-managed VMs: virsh client, domain facts, event streams, and the libvirt transport.
export { Virsh, shellQuote, type VirshOptions, type VirshResult, type VirshExchange } from './virsh';
export { LibvirtError, virshFailure, virshErrorLines, type LibvirtErrorKind } from './errors';
export {
  parseDomState,
  parseDomInfo,
  parseVersions,
  parseDomainConfig,
  readinessWarnings,
  domainState,
  domainInfo,
  versions,
  domainConfig,
  runningDomains,
  type DomainState,
  type DomainInfo,
  type Versions,
  type DomainConfig,
} from './domain';
export { qmpStatusOf, type MappedStatus } from './run-state';
export { parseQemuEventLine, parseDomainEventLine, splitLifecycle, type QemuEventLine, type DomainEventLine } from './event-lines';
export { VirshStream, type StreamEnd } from './stream';
export { LibvirtMonitor, libvirtEndpoint, type LibvirtTarget, type LibvirtFacts, type LibvirtMonitorOptions } from './monitor';
export { runCommand, CommandRefused, isRemoteUri } from './commands';
export { qemuBehindEndpoint, guestNameOf, libvirtEvidence, type QemuOwner, type OwnerLookup } from './ownership';
export { LibvirtTransport, connectLibvirt } from './transport';
export { LibvirtOwnedGuard, connectQmpGuarded, type GuardedSession } from './guard';
export { DomainDiscovery } from './discovery';
