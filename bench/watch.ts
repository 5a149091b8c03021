/**
 * Watch latency on the known-answer guest under TCG (run once, manually: node dist/bench/watch.js [N]).
 *
 * The guest runs with `-action panic=none`, so GUEST_PANICKED leaves it running and the watcher has to
 * send `stop` itself. Each round: `cont` (closes the previous incident), HMP `o /b 0x505 1` (a real
 * pvpanic write -> GUEST_PANICKED), wait for the notification. Measured by the watcher itself:
 *  - event -> stop reply: from the moment the QMP client hands the event to the watcher to the
 *    `stop` reply (the hot path: grade, write `stop`, read the reply);
 *  - event -> bundle: to a complete, fsynced metadata-only bundle (--no-memory, --settle 0).
 * Baseline: a bare `stop` round trip from the same process, for comparison.
 */
import Table from 'cli-table3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBootSectorGuest } from '../src/guest';
import { QmpClient } from '../src/qmp';
import { defaultPolicy, Watch, type IncidentNotification, type WatchLogger } from '../src/watch';

const ROUNDS = Number(process.argv[2] ?? 20);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmpm-bench-watch-'));
  const watchSock = join(dir, 'watch.sock');
  const guest = await launchBootSectorGuest({
    startPaused: true,
    name: 'bench',
    extraArgs: ['-action', 'panic=none', '-qmp', `unix:${watchSock},server=on,wait=off`],
  });
  const notes: IncidentNotification[] = [];
  const quiet: WatchLogger = { log: () => undefined };
  const watch = new Watch({
    endpoints: [`unix:${watchSock}`], outDir: dir, policy: defaultPolicy(), memory: 'none', log: quiet,
    settleMs: 0, catchUp: false, writeNotification: (line) => notes.push(JSON.parse(line) as IncidentNotification),
  });
  const running = watch.run();
  const client = await QmpClient.connect(guest.endpoint, { allow: ['cont', 'o'] });
  try {
    await until(() => watch.watchers[0]!.stats.connects > 0, 'watcher connected');
    await client.execute('cont');
    await client.waitForEvent('GUEST_PANICKED', { timeoutMs: 10_000 }); // the guest's own panic (action run)
    await until(() => notes.length === 1, 'first incident');
    const baseline: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await client.execute('cont');
      const t = performance.now();
      await client.execute('stop');
      baseline.push(performance.now() - t);
      await client.execute('cont');
      await sleep(30); // let the RESUME reach the watcher (closes the incident)
      await client.hmp('o /b 0x505 1');
      await until(() => notes.length === i + 2, `incident ${i + 2}`);
    }
    const rounds = notes.slice(1);
    const bad = rounds.filter((n) => n.stoppedBy !== 'vmpm' || !n.bundle);
    if (bad.length) throw new Error(`unexpected incidents: ${JSON.stringify(bad[0])}`);
    const table = new Table({ style: { head: [], border: [] }, head: ['measure (TCG, -m 64M, metadata-only)', 'median ms', 'min ms', 'max ms', 'n'] });
    const row = (name: string, xs: number[]) => table.push([name, ...[median(xs), Math.min(...xs), Math.max(...xs)].map((x) => x.toFixed(2)), xs.length]);
    row('event arrival -> stop reply (vmpm watch)', rounds.map((n) => n.stopMs!));
    row('bare stop round trip (baseline)', baseline);
    row('event arrival -> complete bundle', rounds.map((n) => n.captureMs!));
    process.stdout.write(`${table.toString()}\n`);
  } finally {
    await client.close();
    await watch.stop(0);
    await running;
    await guest.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/watch: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
