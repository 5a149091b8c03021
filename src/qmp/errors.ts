import { VmpmError } from '../util/errors';

/** Longest raw line kept inside an error object (full lines are in the transcript). */
const ERROR_LINE_CHARS = 2000;

/** A raw protocol line as an error keeps it: cut at ERROR_LINE_CHARS, with the full length said. */
export function clipLine(line: string): string {
  return line.length > ERROR_LINE_CHARS ? `${line.slice(0, ERROR_LINE_CHARS)}... (${line.length} chars)` : line;
}

/**
 * Every failure of the QMP client is a QmpError (a VmpmError, so the CLI prints one line). Where a
 * message was exchanged, `sent` and `received` hold the raw lines, for diagnostics and transcripts.
 */
export class QmpError extends VmpmError {
  readonly sent?: string;
  readonly received?: string;
  constructor(message: string, options: { sent?: string; received?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'QmpError';
    if (options.sent !== undefined) this.sent = options.sent;
    if (options.received !== undefined) this.received = options.received;
  }
}

/** The socket could not be opened: refused, no such socket, permission denied. `code` is the errno name. */
export class QmpConnectError extends QmpError {
  readonly code?: string;
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'QmpConnectError';
    if (options.code !== undefined) this.code = options.code;
  }
}

/**
 * No valid greeting. `timedOut` is true when none arrived in time: QEMU serves one client per
 * monitor socket, and a second client is accepted but never greeted while the first is connected.
 */
export class QmpGreetingError extends QmpError {
  readonly timedOut: boolean;
  constructor(message: string, options: { timedOut?: boolean; received?: string } = {}) {
    super(message, options);
    this.name = 'QmpGreetingError';
    this.timedOut = options.timedOut ?? false;
  }
}

/** `qmp_capabilities` failed or was not answered in time. */
export class QmpNegotiationError extends QmpError {
  constructor(message: string, options: { sent?: string; received?: string } = {}) {
    super(message, options);
    this.name = 'QmpNegotiationError';
  }
}

/** QEMU answered a command with {"error": {"class", "desc"}}. */
export class QmpCommandError extends QmpError {
  readonly command: string;
  readonly args: Record<string, unknown> | undefined;
  readonly errorClass: string;
  readonly desc: string;
  constructor(
    command: string,
    args: Record<string, unknown> | undefined,
    errorClass: string,
    desc: string,
    options: { sent?: string; received?: string; note?: string } = {},
  ) {
    super(`QMP command ${command} failed: ${errorClass}: ${desc}${options.note ? ` (${options.note})` : ''}`, options);
    this.name = 'QmpCommandError';
    this.command = command;
    this.args = args;
    this.errorClass = errorClass;
    this.desc = desc;
  }
}

/** `human-monitor-command` "succeeded" but its text is one of HMP's error messages. */
export class QmpHmpError extends QmpError {
  readonly commandLine: string;
  readonly text: string;
  constructor(commandLine: string, text: string, options: { sent?: string; received?: string } = {}) {
    super(`HMP command ${JSON.stringify(commandLine)} failed: ${firstLine(text)}`, options);
    this.name = 'QmpHmpError';
    this.commandLine = commandLine;
    this.text = text;
  }
}

/** No reply within the timeout (the command may still run in QEMU; a late reply is dropped). */
export class QmpTimeoutError extends QmpError {
  readonly command: string;
  readonly timeoutMs: number;
  constructor(command: string, timeoutMs: number, options: { sent?: string } = {}) {
    super(`QMP command ${command} got no reply within ${timeoutMs} ms`, options);
    this.name = 'QmpTimeoutError';
    this.command = command;
    this.timeoutMs = timeoutMs;
  }
}

/** The connection is gone (closed by QEMU, by us, or after a protocol error); pending calls fail with this. */
export class QmpDisconnectedError extends QmpError {
  constructor(message: string, options: { sent?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = 'QmpDisconnectedError';
  }
}

/** The peer broke the protocol: invalid JSON, an over-long line, a message of unknown shape. Fatal. */
export class QmpProtocolError extends QmpError {
  constructor(message: string, options: { received?: string } = {}) {
    super(message, options);
    this.name = 'QmpProtocolError';
  }
}

/** Refused locally by the safety allow-list: nothing was sent. */
export class QmpUnsafeCommandError extends QmpError {
  readonly command: string;
  constructor(command: string, reason: string) {
    super(`refusing ${reason}: it can change or destroy guest state; name it in the allow-list (--allow ${command}) to run it`);
    this.name = 'QmpUnsafeCommandError';
    this.command = command;
  }
}

function firstLine(text: string): string {
  return (text.split(/\r?\n/).find((l) => l.trim() !== '') ?? '').trim();
}
