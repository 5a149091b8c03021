/**
 * Colour for terminal output. Off when NO_COLOR is set (any value, https://no-color.org), when the
 * stream is not a TTY (pipes, files, tests), or when TERM=dumb; FORCE_COLOR=1 turns it on regardless.
 */
export function colorEnabled(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR === '1') return true;
  return stream.isTTY === true && process.env.TERM !== 'dumb';
}

export interface Palette {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
}

const wrap = (open: number, close: number) => (s: string): string => `\x1b[${open}m${s}\x1b[${close}m`;
const plain = (s: string): string => s;

export function palette(enabled: boolean = colorEnabled()): Palette {
  if (!enabled) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

/** Colours a severity word the way people expect (critical/error red, warning yellow). */
export function severityColor(p: Palette, severity: string): string {
  if (severity === 'critical') return p.bold(p.red(severity));
  if (severity === 'error') return p.red(severity);
  if (severity === 'warning') return p.yellow(severity);
  return severity;
}
