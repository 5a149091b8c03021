import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type FakeConnection, type FakeQmpServer, GREETING, type ReceivedCommand, startFakeQmp } from './fake-qmp';

/**
 * A fake QEMU good enough for a whole `vmpm capture --memory-method pmemsave` (and for watch's
 * session): it answers every query capture makes with plausible values, keeps a run state that
 * stop/cont change (with STOP/RESUME events), and writes pmemsave's bytes into the FIFO it is given.
 * A fault hook sees every command first and may take it over, which is how the hostile suite
 * disconnects, garbles or stalls at any step.
 */
const FIXTURES = join(__dirname, '..', '..', '..', 'test', 'fixtures');

/** 16 MiB of RAM at 0 and nothing else: small enough to stream in a fraction of a second. */
export const SMALL_MTREE = `FlatView #0
 AS "memory", root: system
 Root memory region: system
  0000000000000000-0000000000ffffff (prio 0, ram): pc.ram
  00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
`;

export interface FakeQemuState {
  status: string;
  /** Every command name received, in order (human-monitor-command as "hmp:<command line>"). */
  commands: string[];
  connections: number;
}

/** Returns true when it handled the command (replied, or chose not to). */
export type FaultHook = (cmd: ReceivedCommand, conn: FakeConnection, state: FakeQemuState, step: string) => Promise<boolean> | boolean;

export interface FakeQemuOptions {
  status?: string;
  mtree?: string;
  registers?: string;
  /** Sent instead of the normal greeting (an object or a raw line). */
  greeting?: object | string;
  fault?: FaultHook;
}

export interface FakeQemu extends FakeQmpServer {
  state: FakeQemuState;
}

export function stepName(cmd: ReceivedCommand): string {
  if (cmd.execute === 'human-monitor-command') return `hmp:${String(cmd.arguments?.['command-line'] ?? '')}`;
  return cmd.execute;
}

export async function startFakeQemu(options: FakeQemuOptions = {}): Promise<FakeQemu> {
  const state: FakeQemuState = { status: options.status ?? 'running', commands: [], connections: 0 };
  const registers = options.registers ?? readFileSync(join(FIXTURES, 'hmp', 'x86-long-mode.txt'), 'utf8');
  const mtree = options.mtree ?? SMALL_MTREE;
  const server = await startFakeQmp(async (conn) => {
    state.connections++;
    conn.send(options.greeting ?? GREETING);
    for (;;) {
      let cmd: ReceivedCommand;
      try {
        cmd = await conn.nextCommand(120_000);
      } catch {
        return; // the client went away
      }
      const step = stepName(cmd);
      state.commands.push(step);
      if (options.fault && (await options.fault(cmd, conn, state, step))) continue;
      await answer(cmd, conn, state, step, registers, mtree);
    }
  });
  return Object.assign(server, { state });
}

async function answer(cmd: ReceivedCommand, conn: FakeConnection, state: FakeQemuState, step: string, registers: string, mtree: string): Promise<void> {
  const running = state.status === 'running';
  switch (step) {
    case 'qmp_capabilities':
    case 'query-memdev':
    case 'query-memory-devices':
    case 'query-blockstats':
    case 'query-cpus-fast':
      return conn.reply(cmd, step === 'qmp_capabilities' ? {} : step === 'query-cpus-fast' ? [{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', 'thread-id': 1, target: 'x86_64' }] : []);
    case 'query-status':
      return conn.reply(cmd, { status: state.status, running, singlestep: false });
    case 'query-version':
      return conn.reply(cmd, GREETING.QMP.version);
    case 'query-target':
      return conn.reply(cmd, { arch: 'x86_64' });
    case 'query-name':
      return conn.reply(cmd, { name: 'fake-vm' });
    case 'query-uuid':
      return conn.reply(cmd, { UUID: '11111111-2222-3333-4444-555555555555' });
    case 'query-kvm':
      return conn.reply(cmd, { enabled: false, present: false });
    case 'query-memory-size-summary':
      return conn.reply(cmd, { 'base-memory': 16 * 1024 * 1024 });
    case 'query-block':
      return conn.reply(cmd, [{ device: 'ide0-hd0', 'io-status': 'ok', locked: false, removable: false, type: 'unknown' }]);
    case 'hmp:info registers -a':
      return conn.reply(cmd, registers);
    case 'hmp:info mtree -f':
      return conn.reply(cmd, mtree);
    case 'stop':
      if (running) {
        state.status = 'paused';
        conn.event('STOP');
      }
      return conn.reply(cmd, {});
    case 'cont':
      state.status = 'running';
      conn.event('RESUME');
      return conn.reply(cmd, {});
    case 'pmemsave':
      await writePmemsave(String(cmd.arguments?.filename), Number(cmd.arguments?.size), Number(cmd.arguments?.val));
      return conn.reply(cmd, {});
    default:
      return conn.send({ error: { class: 'CommandNotFound', desc: `The command ${cmd.execute} has not been found` }, id: cmd.id });
  }
}

/** Writes `size` bytes into the FIFO: each 4 KiB page holds its own address, so pages are non-zero and distinct. */
export async function writePmemsave(path: string, size: number, start: number): Promise<void> {
  const out = createWriteStream(path);
  const chunk = 1024 * 1024;
  for (let off = 0; off < size; off += chunk) {
    const n = Math.min(chunk, size - off);
    const b = Buffer.alloc(n);
    for (let p = 0; p < n; p += 4096) b.writeBigUInt64LE(BigInt(start + off + p), p);
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => {
    out.on('error', reject);
    out.end(resolve);
  });
}
