/**
 * The error every layer throws for conditions a user can act on. The CLI prints `message` as one line
 * on stderr and exits with `exitCode`; anything that is not a VmpmError is a bug and shows a stack
 * trace only with --debug.
 */
export class VmpmError extends Error {
  /** Process exit code the CLI uses for this error (1 = failure, 2 = usage). */
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VmpmError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Bad command-line usage: wrong flags, missing arguments, values that do not parse. Exit code 2. */
export class UsageError extends VmpmError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** Best-effort one-line description of anything thrown (zstd-codec throws strings, for instance). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  if (typeof err === 'string') return err.split('\n')[0] ?? err;
  return String(err);
}
