/**
 * One vmpm capture in a fresh process, so its peak RSS (all threads) is its own. Prints one JSON line.
 *   node capture-child.js ENDPOINT OUT.vmpm dump|pmemsave|snapshot|none
 */
import { capture } from '../src/capture';
import { QmpClient } from '../src/qmp';

async function main(): Promise<void> {
  const [endpoint, output, method] = process.argv.slice(2);
  const t0 = performance.now();
  const client = await QmpClient.connect(endpoint!, { allow: ['cont', 'migrate', 'migrate-set-capabilities', 'migrate-set-parameters', 'migrate_cancel'] });
  const connected = performance.now();
  try {
    const result = await capture(client, { output: output!, overwrite: true, quiesce: 'stop-and-restore', memory: method as 'dump' | 'pmemsave' | 'snapshot' | 'none' });
    const done = performance.now();
    process.stdout.write(
      `${JSON.stringify({
        connectMs: connected - t0,
        captureMs: done - connected,
        // All threads of this process (main, FIFO reads, compression workers); QEMU's own CPU is not included.
        cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
        size: result.size,
        maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
        pages: result.summary.pages,
        zeroPages: result.summary.zeroPages,
        storedPages: result.summary.storedPages,
        dedupPages: result.summary.dedupPages,
        memoryMethod: result.summary.memoryMethod,
        pausedMs: result.manifest.timings.paused ?? null,
        qemuDowntimeMs: result.manifest.timings.snapshotDowntime ?? null,
        qemuSetupMs: result.manifest.timings.snapshotSetup ?? null,
      })}\n`,
    );
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
