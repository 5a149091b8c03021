import { Command, CommanderError } from 'commander';
import { VmpmError, describeError } from '../util/errors';
import { VMPM_VERSION } from '../version';
import { COMMANDS } from './commands/index';
import { installPipeGuard } from './pipes';

/** Builds the commander program with every subcommand registered. Exported for tests. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('vmpm')
    .description('Post-mortem forensics for QEMU/KVM guests: quiesce, capture, inspect, diff, report')
    .version(VMPM_VERSION, '-V, --version')
    .option('--debug', 'show stack traces for unexpected errors')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      writeOut: (s) => process.stdout.write(s),
      // Usage errors look like every other vmpm error: one line, "vmpm: ..." (commander says "error: ...").
      outputError: (s, write) => write(`vmpm: ${s.replace(/^error: /, '')}`),
    });
  for (const register of COMMANDS) register(program);
  // Subcommands inherit exitOverride so usage errors come back here instead of calling process.exit.
  // ...and print their usage errors the same way.
  for (const sub of program.commands) sub.exitOverride().configureOutput(program.configureOutput());
  return program;
}

/**
 * Runs the CLI and resolves to the process exit code. Errors become one line on stderr:
 * VmpmError -> its exitCode (1, or 2 for usage); commander usage errors -> 2; anything else -> 1,
 * with the stack only under --debug.
 */
export async function main(argv: string[]): Promise<number> {
  installPipeGuard();
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here as "errors" with exit code 0.
      if (err.exitCode === 0) return 0;
      return 2;
    }
    if (err instanceof VmpmError) {
      process.stderr.write(`vmpm: ${describeError(err)}\n`);
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
      return err.exitCode;
    }
    process.stderr.write(`vmpm: unexpected error: ${describeError(err)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    else process.stderr.write('vmpm: (run again with --debug for a stack trace)\n');
    return 1;
  }
}
