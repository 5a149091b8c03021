import type { Command } from 'commander';
import { resolve } from 'node:path';
import { importDump } from '../../interop/import';
import { humanBytes } from '../../util/bytes';
import { printJson } from '../output/json';
import { createProgressBar } from '../progress';
import { abortOnSignals } from '../signals';

/** `vmpm import DUMP -o CASE.vmpm`: a QEMU/libvirt ELF dump or a kdump file as a bundle every analyst command reads. */
export function register(program: Command): void {
  program
    .command('import')
    .description('turn a QEMU/libvirt ELF dump or a (flattened) kdump-compressed file into a bundle')
    .argument('<dump>', 'dump file: ELF core (dump-guest-memory, virsh dump --memory-only), kdump-compressed, or flattened (makedumpfile -F, QEMU kdump-*)')
    .requiredOption('-o, --output <file>', 'bundle to write (e.g. case.vmpm)')
    .option('--force', 'overwrite an existing output')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Registers come from the dump's notes (what they lack is absent, not zero); memory lands at its
physical addresses; pages a filter dropped are holes. The dump's SHA-256 and format are kept in
the manifest.

Examples:
  virsh dump vm1 vm1.elf --memory-only --format elf && vmpm import vm1.elf -o vm1.vmpm
  vmpm import /var/crash/127.0.0.1-2024-05-01/vmcore -o crash.vmpm && vmpm info crash.vmpm`,
    )
    .action(async (dump: string, o: { output: string; force?: boolean; json?: boolean }) => {
      const progress = o.json ? undefined : createProgressBar();
      const signals = abortOnSignals();
      try {
        const result = await importDump(dump, {
          output: resolve(o.output),
          force: o.force === true,
          signal: signals.signal,
          onProgress: (done, total) => progress?.update({ phase: 'memory', done, total }),
        });
        progress?.done();
        if (o.json) {
          printJson(result);
          return;
        }
        for (const w of result.warnings) process.stderr.write(`vmpm: warning: ${w}\n`);
        process.stdout.write(
          `imported ${dump} (${result.format}, sha256 ${result.sha256.slice(0, 16)}...) [${result.arch}]: ${result.cpus} vCPU${result.cpus === 1 ? '' : 's'}, ` +
            `${humanBytes(Number(BigInt(result.capturedBytes)))} in ${result.ranges} range${result.ranges === 1 ? '' : 's'}${result.vmcoreinfo ? ', VMCOREINFO' : ''} -> ${result.output} in ${(result.durationMs / 1000).toFixed(2)} s\n`,
        );
      } finally {
        progress?.done();
        signals.dispose();
      }
    });
}
