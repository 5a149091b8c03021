import { UsageError } from '../util/errors';

export type Endpoint = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/**
 * "unix:/path", a bare path ("/p", "./p", "dir/qmp.sock"), or "tcp:host:port" ("tcp:[::1]:4444" for
 * IPv6). Anything else with a scheme-like prefix is a usage error.
 */
export function parseEndpoint(text: string): Endpoint {
  const t = text.trim();
  if (t === '') throw new UsageError('empty QMP endpoint (expected unix:PATH, a socket path, or tcp:HOST:PORT)');
  if (t.startsWith('unix:')) {
    const path = t.slice(5);
    if (path === '') throw new UsageError(`QMP endpoint ${JSON.stringify(text)} has no socket path`);
    return { kind: 'unix', path };
  }
  if (t.startsWith('tcp:')) return parseTcp(t.slice(4), text);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(t) && !t.includes('/')) {
    throw new UsageError(`unsupported QMP endpoint ${JSON.stringify(text)} (expected unix:PATH, a socket path, or tcp:HOST:PORT)`);
  }
  return { kind: 'unix', path: t };
}

function parseTcp(rest: string, original: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`bad TCP QMP endpoint ${JSON.stringify(original)} (expected tcp:HOST:PORT with port 1-65535)`);
  }
  return { kind: 'tcp', host: (m[1] ?? m[2])!, port };
}

export function formatEndpoint(e: Endpoint): string {
  if (e.kind === 'unix') return `unix:${e.path}`;
  return e.host.includes(':') ? `tcp:[${e.host}]:${e.port}` : `tcp:${e.host}:${e.port}`;
}
