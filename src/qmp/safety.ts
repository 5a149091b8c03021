import { QmpUnsafeCommandError } from './errors';

/**
 * vmpm is a forensic tool: by default it may only look. Commands that read state, `stop` (quiesce),
 * and the memory-dump commands (which write host files, not guest state) are always allowed;
 * everything else - cont, system_reset, quit, device_add, inject-nmi, unknown commands - must be
 * named by the caller. The check runs before anything is written to the socket.
 */
const ALWAYS_ALLOWED = new Set([
  'qmp_capabilities',
  'stop',
  'qom-list',
  'qom-get',
  'qom-list-types',
  'qom-list-properties',
  'device-list-properties',
  'dump-guest-memory',
  'query-dump',
  'pmemsave',
  'memsave',
]);

/** Read-only HMP commands (first word of the command line). Aliases count separately on purpose. */
const HMP_READ_ONLY = new Set(['info', 'x', 'xp', 'help', '?', 'print', 'p', 'stop', 'pmemsave', 'memsave', 'dump-guest-memory']);

export function isAlwaysAllowed(command: string): boolean {
  return ALWAYS_ALLOWED.has(command) || /^(x-)?query-/.test(command);
}

/** First word of an HMP command line ("info registers -a" -> "info"). */
export function hmpCommandName(commandLine: string): string {
  return commandLine.trim().split(/\s+/)[0] ?? '';
}

/**
 * Throws QmpUnsafeCommandError unless `command` (with `args`) is safe or allowed. For
 * `human-monitor-command`, the HMP command word decides: read-only ones pass; others need either
 * that word (e.g. "mce", "o", "cont") or "human-monitor-command" itself in `allow`.
 */
export function assertCommandAllowed(command: string, args: Record<string, unknown> | undefined, allow: ReadonlySet<string>): void {
  if (command === 'human-monitor-command') {
    const line = args?.['command-line'];
    if (typeof line !== 'string') return; // QEMU rejects it; nothing can run
    const word = hmpCommandName(line);
    if (HMP_READ_ONLY.has(word) || allow.has(word) || allow.has(command)) return;
    throw new QmpUnsafeCommandError(word, `HMP command ${JSON.stringify(word === '' ? line : word)}`);
  }
  if (isAlwaysAllowed(command)) return;
  // Even when allowed, `migrate` may only target a unix socket (vmpm's own, for a background
  // snapshot): never exec: (a shell), tcp:, rdma: or file: destinations.
  if (command === 'migrate' && allow.has(command)) {
    const uri = args?.['uri'];
    if (typeof uri === 'string' && uri.startsWith('unix:')) return;
    throw new QmpUnsafeCommandError(command, `QMP command "migrate" to ${JSON.stringify(typeof uri === 'string' ? uri.slice(0, 40) : uri)} (only unix: sockets)`);
  }
  if (allow.has(command)) return;
  throw new QmpUnsafeCommandError(command, `QMP command ${JSON.stringify(command)}`);
}
