import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { BundleReader } from '../../bundle';
import { capture, formatSummaryLine, summaryFromBundle } from '../../capture';
import { findQemu, launchBootSectorGuest, type LaunchedQemu } from '../../guest';
import { QmpClient } from '../../qmp';
import { checkOutputPath } from '../output/write';

/** The committed sample bundle (dist/src/cli/commands -> repo root). */
export const SAMPLE_BUNDLE = join(__dirname, '..', '..', '..', '..', 'samples', 'boot-sector-panic.vmpm');
const PANIC_TIMEOUT_MS = 30_000;

interface DemoOptions {
  output: string;
  force?: boolean;
  json?: boolean;
}

function say(line: string): void {
  process.stderr.write(`vmpm demo: ${line}\n`);
}

async function showSample(o: DemoOptions): Promise<void> {
  say('qemu-system-x86_64 is not installed (apt-get install qemu-system-x86), so nothing can be booted here.');
  say(`showing the sample bundle captured from the same built-in guest: ${SAMPLE_BUNDLE}`);
  const reader = await BundleReader.open(SAMPLE_BUNDLE);
  try {
    const summary = await summaryFromBundle(reader);
    process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummaryLine(summary)}\n`);
  } finally {
    await reader.close();
  }
  say(`next: vmpm info ${SAMPLE_BUNDLE}`);
}

async function runDemo(o: DemoOptions): Promise<void> {
  const output = resolve(o.output);
  // Checked before booting anything (the bundle writer checks again, atomically): an existing file, a
  // directory or a missing parent would otherwise fail only after the guest was booted and captured.
  checkOutputPath(output, o.force === true);
  say('booting the built-in known-answer boot sector under TCG (64 MiB, ISA pvpanic)...');
  let qemu: LaunchedQemu | undefined;
  let client: QmpClient | undefined;
  try {
    qemu = await launchBootSectorGuest({ startPaused: true, name: 'vmpm-demo' });
    // The demo starts its own guest, so it may resume it from -S; nothing else state-changing is allowed.
    client = await QmpClient.connect(qemu.endpoint, { allow: ['cont'] });
    const t0 = Date.now();
    await client.execute('cont');
    const panic = await client.waitForEvent('GUEST_PANICKED', { timeoutMs: PANIC_TIMEOUT_MS });
    say(`guest panicked after ${Date.now() - t0} ms (GUEST_PANICKED, action ${String(panic.data?.action ?? '?')}); capturing...`);
    const result = await capture(client, {
      output,
      overwrite: o.force ?? false,
      quiesce: 'stop-and-restore',
      memory: 'dump',
      label: 'vmpm demo: built-in known-answer guest',
    });
    process.stdout.write(o.json ? `${JSON.stringify(result.summary, null, 2)}\n` : `${formatSummaryLine(result.summary)}\n`);
    say(`next: vmpm info ${o.output} ; vmpm regs ${o.output} ; vmpm read ${o.output} --phys 0x20000 --length 64 ; vmpm report ${o.output} -o report.html`);
  } finally {
    await client?.close();
    await qemu?.kill();
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('boot the built-in known-answer guest, let it panic and capture it (or show the sample bundle without QEMU)')
    .option('-o, --output <file>', 'bundle to write', 'demo.vmpm')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print the summary as JSON')
    .action(async (o: DemoOptions) => {
      if (findQemu('x86_64') === undefined) await showSample(o);
      else await runDemo(o);
    });
}
