/**
 * The first QmpTransport: QEMU's own monitor socket (`-qmp unix:PATH,server=on` or tcp:HOST:PORT).
 * QMP frames every message as one line; this transport splits the byte stream into lines with a
 * bound on an unfinished line, so a peer sending an endless line gets a QmpProtocolError instead of
 * exhausting memory. Node's net.Socket cannot send SCM_RIGHTS, so it passes no file descriptors.
 */
import { statSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { formatEndpoint, type Endpoint } from './endpoint';
import { QmpConnectError, QmpError, QmpProtocolError } from './errors';
import { LineReader, LineTooLongError } from './line-reader';
import type { QmpTransport, TransportCapabilities, TransportHandlers } from './transport';

/** How long an orderly close waits for the peer before destroying the socket. */
const CLOSE_GRACE_MS = 1000;

export class SocketTransport implements QmpTransport {
  readonly endpoint: string;
  readonly capabilities: TransportCapabilities = { greeting: true, fdPassing: false };
  private readonly target: Endpoint;
  private readonly reader: LineReader;
  private socket: Socket | undefined;
  private handlers: TransportHandlers | undefined;
  /** The socket's last error, reported as the reason when it closes. */
  private socketError: Error | undefined;
  /** Set once handlers.onClose has been called (the transport is finished). */
  private ended = false;
  private socketClosed: Promise<void> = Promise.resolve();
  /** The unix socket file's identity, read once connected (QEMU creates a new socket file each start). */
  instance: string | null = null;

  constructor(endpoint: Endpoint, options: { maxLineBytes?: number } = {}) {
    this.target = endpoint;
    this.endpoint = formatEndpoint(endpoint);
    this.reader = new LineReader(options.maxLineBytes ?? 64 * 1024 * 1024);
  }

  connect(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    const ep = this.target;
    const socket = ep.kind === 'unix' ? createConnection({ path: ep.path }) : createConnection({ host: ep.host, port: ep.port });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.socketError = err;
    });
    this.socketClosed = new Promise((resolve) => {
      socket.on('close', () => {
        this.end(this.socketError);
        resolve();
      });
    });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        if (ep.kind === 'unix') {
          const found = socketFileIdentity(ep.path);
          this.instance = found.state === 'present' ? found.instance : null;
        }
        resolve();
      });
      socket.once('error', (err: NodeJS.ErrnoException) => reject(connectError(err, ep, this.endpoint)));
    });
  }

  send(text: string, fds?: readonly number[]): void {
    if (fds !== undefined && fds.length > 0) throw new QmpError(`${this.endpoint} cannot pass file descriptors`);
    this.socket?.write(`${text}\n`);
  }

  async close(): Promise<void> {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) {
      this.end(undefined);
      return;
    }
    socket.end();
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    await this.socketClosed;
    clearTimeout(timer);
  }

  destroy(): void {
    this.socket?.destroy();
  }

  private onData(chunk: Buffer): void {
    let lines: string[];
    try {
      lines = this.reader.push(chunk);
    } catch (err) {
      if (err instanceof LineTooLongError) {
        this.end(new QmpProtocolError(`${this.endpoint} sent a line longer than ${err.limit} bytes; connection closed`));
        this.socket?.destroy();
        return;
      }
      throw err;
    }
    for (const line of lines) {
      if (this.ended) return;
      this.handlers?.onMessage(line);
    }
  }

  private end(reason: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers?.onClose(reason);
  }
}

/**
 * The identity of the socket file at `path`: `unix-socket:DEV:INO:MTIME_NS` (decimal). QEMU unlinks
 * and re-creates its `-qmp unix:` socket each time it starts, so a later QEMU at the same path has
 * another inode, or (on a filesystem that reuses a freed inode at once, ext4, xfs) at least another
 * modification time; nothing QMP does changes them. `absent` when nothing (or no socket) is there now,
 * `unknown` when it cannot be looked at (a directory vmpm may not search).
 */
export function socketFileIdentity(path: string): { state: 'present'; instance: string } | { state: 'absent' } | { state: 'unknown' } {
  try {
    const info = statSync(path, { bigint: true });
    if (!info.isSocket()) return { state: 'absent' };
    return { state: 'present', instance: `unix-socket:${info.dev}:${info.ino}:${info.mtimeNs}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? { state: 'absent' } : { state: 'unknown' };
  }
}

function connectError(err: NodeJS.ErrnoException, ep: Endpoint, endpoint: string): QmpConnectError {
  const code = err.code;
  const where = ep.kind === 'unix' ? ep.path : endpoint;
  const misplaced = code === 'ECONNREFUSED' && ep.kind === 'unix' ? notASocket(ep.path) : undefined;
  let text: string;
  if (code === 'ENOENT') text = `no QMP socket at ${where} (is QEMU running with -qmp unix:${where},server=on,wait=off?)`;
  else if (misplaced !== undefined) text = `${where} is ${misplaced}, not a socket (expected QEMU's -qmp unix:PATH,server=on socket)`;
  else if (code === 'ECONNREFUSED') text = `connection refused by ${endpoint} (QEMU not running, or a stale socket)`;
  else if (code === 'EACCES' || code === 'EPERM') text = `permission denied connecting to ${where}`;
  else if (code === 'ENOTSOCK') text = `${where} is not a socket`;
  else text = `cannot connect to ${endpoint}: ${err.message}`;
  return new QmpConnectError(text, { ...(code !== undefined ? { code } : {}), cause: err });
}

/** Linux refuses a connect() to a regular file or directory with ECONNREFUSED; say what the path really is. */
function notASocket(path: string): string | undefined {
  try {
    const info = statSync(path);
    if (info.isSocket()) return undefined;
    return info.isDirectory() ? 'a directory' : info.isFile() ? 'a regular file' : 'not a socket file';
  } catch {
    return undefined;
  }
}
