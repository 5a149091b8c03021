import type { Command } from 'commander';
import { describeLeftover, releaseFifoLeftovers } from '../../capture/leftovers';
import { parseMilliseconds } from '../output/args';
import { queryState, STATE_EXIT, type FailoverState } from '../../watch';
import { addTargetOptions, openSession, targetFrom, targetLabel, type TargetOptions } from './target';

/** libvirt's connect runs several virsh calls (domain facts) before the first query: a longer default. */
const LIBVIRT_DEFAULT_TIMEOUT_MS = 15_000;

interface StateCommandOptions extends TargetOptions {
  outDir?: string;
  json?: boolean;
  verify: boolean;
  timeout: string;
}

/**
 * `vmpm state`: the passive check an HA resource agent polls. The exit code is the answer:
 * 0 running, 10 failover-safe, 11 stopped but not captured, 12 monitor unreachable, 2 usage, 1 error.
 */
export function register(program: Command): void {
  const command = program
    .command('state')
    .description('run state of a VM and whether it is failover-safe (stopped, with a verified bundle of this stop)');
  addTargetOptions(command)
    .option('--out-dir <dir>', 'where vmpm watch writes bundles (without it a stopped VM is never failover-safe)')
    .option('--no-verify', 'skip re-hashing the bundle (faster for large bundles; structure is still checked)')
    .option('--timeout <ms>', 'connect timeout (default 3000; 15000 with --libvirt)', '3000')
    .option('--json', 'print the result as one JSON object')
    .addHelpText(
      'after',
      `
Exit codes: ${STATE_EXIT.running} running, ${STATE_EXIT.failoverSafe} failover-safe, ${STATE_EXIT.stoppedNotCaptured} stopped but not captured, ${STATE_EXIT.unreachable} unreachable, 2 usage, 1 other error.
Failover-safe: not running, and the newest bundle of this VM (same UUID and name) in --out-dir recorded
the same run state, exactly the vCPU registers the VM has now (so it was not resumed since), was not
taken after QEMU itself reset the guest, and verifies.

Example:
  vmpm state --qmp unix:/run/vm1.qmp --out-dir /var/lib/vmpm; echo $?
  vmpm state --libvirt web1 --out-dir /var/lib/vmpm; echo $?`,
    )
    .action(async (options: StateCommandOptions, cmd: Command) => {
      const target = targetFrom(options);
      const given = cmd.getOptionValueSource('timeout') === 'cli';
      const timeout = target.kind === 'libvirt' && !given ? LIBVIRT_DEFAULT_TIMEOUT_MS : parseMilliseconds(options.timeout, '--timeout');
      // Before connecting: a killed vmpm's FIFO may hold libvirtd (the domain's job) or QEMU (its monitor) in open().
      for (const l of releaseFifoLeftovers()) process.stderr.write(`vmpm: warning: ${describeLeftover(l)}\n`);
      const state = await queryState(targetLabel(target), {
        ...(options.outDir !== undefined ? { outDir: options.outDir } : {}),
        verify: options.verify,
        connectTimeoutMs: timeout,
        note: (line: string) => process.stderr.write(`vmpm: note: ${line}\n`),
        ...(target.kind === 'libvirt' ? { connect: async (o: { connectTimeoutMs: number }) => (await openSession(target, o)).client } : {}),
      });
      if (!options.json) for (const line of state.previousVmpm ?? []) process.stderr.write(`vmpm: warning: ${line}\n`);
      process.stdout.write(options.json ? `${JSON.stringify(state)}\n` : humanState(state));
      process.exitCode = state.exitCode;
    });
}

function humanState(s: FailoverState): string {
  const lines = [
    `vm:            ${s.vm ? `${s.vm.name ?? '(no name)'} ${s.vm.uuid ?? '(no uuid)'}` : '-'} at ${s.endpoint}`,
    `run state:     ${s.status ?? 'unknown'}${s.reason && s.reason !== s.status ? ` - ${s.reason}` : ''}`,
    ...(s.libvirt !== undefined ? [`libvirt:       ${s.libvirt}`] : []),
    `failover-safe: ${s.failoverSafe ? 'yes' : 'no'} (${s.verdict}, exit ${s.exitCode})`,
    `why:           ${s.explanation}`,
  ];
  if (s.bundle) lines.push(`bundle:        ${s.bundle.path} (captured ${s.bundle.createdAt})`);
  for (const c of s.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.check}: ${c.detail}`);
  return `${lines.join('\n')}\n`;
}
