import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A scripted fake QMP server on a unix socket in a private temp dir, for what real QEMU will not do
 * on demand (events before the greeting, id-less errors, out-of-order replies, garbage...). Each
 * accepted connection runs `script` with a FakeConnection; everything the server receives is
 * recorded verbatim in `received`, which is how tests prove a refused command never reached it.
 */
export const GREETING = {
  QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: 'fake' }, capabilities: ['oob'] },
};

export interface ReceivedCommand {
  line: string;
  execute: string;
  id: unknown;
  arguments?: Record<string, unknown>;
}

export interface FakeConnection {
  /** Sends one message: objects are JSON-encoded, strings sent verbatim; "\n" is appended. */
  send(message: object | string): void;
  /** Sends raw bytes with no framing. Resolves when the kernel accepted them (backpressure). */
  sendRaw(data: string | Buffer): Promise<void>;
  /** An event line with a timestamp. */
  event(name: string, data?: Record<string, unknown>): void;
  greet(): void;
  /** Waits for the next line from the client and decodes it. Rejects after `timeoutMs` (default 2000). */
  nextCommand(timeoutMs?: number): Promise<ReceivedCommand>;
  /** Expects `qmp_capabilities` and answers it (optionally sending `before` lines first). */
  negotiate(): Promise<void>;
  /** Greeting + negotiation, the usual start of a script. */
  handshake(): Promise<void>;
  /** Replies {"return": value, "id": <id of cmd>}. */
  reply(cmd: ReceivedCommand, value: unknown): void;
  /** Ends the connection. */
  close(): void;
  readonly socket: Socket;
  /** Resolves when the client side has closed the connection. */
  readonly closed: Promise<void>;
}

export interface FakeQmpServer {
  path: string;
  endpoint: string;
  /** Every line received over all connections, in order. */
  received: string[];
  /** Resolves when the first connection's script finished (rejects with its error). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startFakeQmp(script: (conn: FakeConnection) => Promise<void>): Promise<FakeQmpServer> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-fakeqmp-'));
  const path = join(dir, 'qmp.sock');
  const received: string[] = [];
  const sockets = new Set<Socket>();
  let resolveDone!: () => void;
  let rejectDone!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolveDone = res;
    rejectDone = rej;
  });
  done.catch(() => undefined);
  let first = true;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const conn = makeConnection(socket, received);
    const run = script(conn);
    if (first) {
      first = false;
      run.then(resolveDone, rejectDone);
    } else run.catch(() => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    endpoint: `unix:${path}`,
    received,
    done,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function makeConnection(socket: Socket, received: string[]): FakeConnection {
  const lines: string[] = [];
  const waiters: Array<{ take: (line: string) => void; fail: (e: Error) => void }> = [];
  let partial = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      received.push(line);
      const w = waiters.shift();
      if (w) w.take(line);
      else lines.push(line);
    }
  });
  socket.on('error', () => undefined); // the client may cut us off mid-write; tests look at outcomes
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      // Nobody will send more: fail waiting scripts now instead of at their timeout.
      isClosed = true;
      for (const w of waiters.splice(0)) w.fail(new Error('fake QMP: client closed the connection'));
      resolve();
    }),
  );

  const conn: FakeConnection = {
    socket,
    closed,
    send(message) {
      if (!socket.destroyed) socket.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
    },
    sendRaw(data) {
      return new Promise((resolve, reject) => {
        if (socket.destroyed) {
          reject(new Error('socket closed'));
          return;
        }
        socket.write(data, (err) => (err ? reject(err) : resolve()));
      });
    },
    event(name, data) {
      const now = Date.now();
      conn.send({ event: name, ...(data ? { data } : {}), timestamp: { seconds: Math.floor(now / 1000), microseconds: (now % 1000) * 1000 } });
    },
    greet() {
      conn.send(GREETING);
    },
    nextCommand(timeoutMs = 2000) {
      return new Promise((resolve, reject) => {
        const waiter = {
          take: (line: string): void => decode(line),
          fail: (e: Error): void => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const decode = (line: string): void => {
          clearTimeout(timer);
          const msg = JSON.parse(line) as { execute: string; id: unknown; arguments?: Record<string, unknown> };
          resolve({ line, execute: msg.execute, id: msg.id, ...(msg.arguments ? { arguments: msg.arguments } : {}) });
        };
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`fake QMP: no command from the client within ${timeoutMs} ms`));
        }, timeoutMs);
        const queued = lines.shift();
        if (queued !== undefined) decode(queued);
        else if (isClosed) waiter.fail(new Error('fake QMP: client closed the connection'));
        else waiters.push(waiter);
      });
    },
    async negotiate() {
      const cmd = await conn.nextCommand();
      if (cmd.execute !== 'qmp_capabilities') throw new Error(`fake QMP: expected qmp_capabilities, got ${cmd.line}`);
      conn.reply(cmd, {});
    },
    async handshake() {
      conn.greet();
      await conn.negotiate();
    },
    reply(cmd, value) {
      conn.send(`{"return": ${JSON.stringify(value)}, "id": ${JSON.stringify(cmd.id)}}`);
    },
    close() {
      socket.end();
    },
  };
  return conn;
}

/** Runs `body` against a fake server running `script`; always stops the server. */
export async function withFake(script: (conn: FakeConnection) => Promise<void>, body: (server: FakeQmpServer) => Promise<void>): Promise<void> {
  const server = await startFakeQmp(script);
  try {
    await body(server);
  } finally {
    await server.stop();
  }
}
