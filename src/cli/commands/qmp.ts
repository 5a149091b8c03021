import type { Command } from 'commander';
import { UsageError } from '../../util/errors';
import { parseJson, stringifyJson } from '../../qmp';
import { describeLeftover, releaseFifoLeftovers } from '../../capture/leftovers';
import { parseMilliseconds } from '../output/args';
import { addTargetOptions, openSession, targetFrom, type TargetOptions } from './target';

interface QmpCommandOptions extends TargetOptions {
  allow: string[];
  timeout?: string;
  hmp?: boolean;
}

/**
 * `vmpm qmp`: one QMP command (or, with --hmp, one HMP command line) against a monitor, reply on
 * stdout as pretty JSON with exact 64-bit integers. Same safety rules as every vmpm command.
 */
export function register(program: Command): void {
  const command = program
    .command('qmp')
    .description('run one QMP command (or HMP command line with --hmp) and print the reply as JSON');
  addTargetOptions(command)
    .argument('<command>', 'QMP command name, e.g. query-status (with --hmp: the HMP command line)')
    .argument('[args...]', "arguments as one JSON object, e.g. '{\"val\":0,\"size\":16,\"filename\":\"/tmp/m\"}' (with --hmp: rest of the HMP line)")
    .option('--allow <command>', 'allow a state-changing command (repeatable, or comma-separated), e.g. --allow cont', collect, [])
    .option('--timeout <ms>', 'reply timeout in milliseconds (default 30000)')
    .option('--hmp', 'run COMMAND [ARGS...] as a human-monitor-command line and print its text')
    .addHelpText(
      'after',
      `
Examples:
  vmpm qmp --qmp unix:/run/vm/qmp.sock query-status
  vmpm qmp --qmp /run/vm/qmp.sock memsave '{"val":-140737488224256,"size":4096,"filename":"/tmp/page"}'
  vmpm qmp --qmp tcp:127.0.0.1:4444 --hmp info registers -a
  vmpm qmp --qmp unix:/run/vm/qmp.sock --allow cont cont
  vmpm qmp --libvirt web1 query-block          (read-only queries go through virsh qemu-monitor-command)`,
    )
    .action(async (command: string, rest: string[], options: QmpCommandOptions) => {
      const target = targetFrom(options);
      const timeoutMs = options.timeout === undefined ? undefined : parseMilliseconds(options.timeout, '--timeout');
      const args = options.hmp ? undefined : parseArgs(command, rest);
      // Before connecting: a killed vmpm's FIFO may hold QEMU's monitor (or libvirtd's domain job) in open().
      for (const l of releaseFifoLeftovers()) process.stderr.write(`vmpm: warning: ${describeLeftover(l)}\n`);
      const { client } = await openSession(target, {
        allow: options.allow,
        ...(timeoutMs !== undefined ? { commandTimeoutMs: timeoutMs } : {}),
      });
      try {
        if (options.hmp) {
          const text = await client.hmp([command, ...rest].join(' '));
          process.stdout.write(text.replace(/\r\n/g, '\n'));
        } else {
          const reply = await client.execute(command, args);
          process.stdout.write(`${stringifyJson(reply, 2)}\n`);
        }
      } finally {
        await client.close();
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s !== '')];
}

function parseArgs(command: string, rest: string[]): Record<string, unknown> | undefined {
  if (rest.length === 0) return undefined;
  if (rest.length > 1) {
    throw new UsageError(`${command}: expected one JSON object of arguments, got ${rest.length} words (quote the JSON, or use --hmp for an HMP line)`);
  }
  let value: unknown;
  try {
    value = parseJson(rest[0]!);
  } catch (err) {
    throw new UsageError(`${command}: arguments are not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${command}: arguments must be a JSON object like '{"key": value}'`);
  }
  return value as Record<string, unknown>;
}
