/**
 * The watcher's diary on stderr: one line per thing it does, prefixed with the time and the VM, or
 * one JSON object per line with --json (for journald / log shippers). stdout is reserved for the
 * incident notifications HA software parses.
 */
export type LogLevel = 'info' | 'warn' | 'error';

export interface WatchLogger {
  log(level: LogLevel, vm: string | undefined, message: string, fields?: Record<string, unknown>): void;
}

export function stderrLogger(options: { json?: boolean; write?: (line: string) => void } = {}): WatchLogger {
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  return {
    log(level, vm, message, fields) {
      const at = new Date().toISOString();
      if (options.json) {
        write(`${JSON.stringify({ at, level, ...(vm ? { vm } : {}), message, ...fields }, bigintAsHex)}\n`);
      } else {
        const tag = level === 'info' ? '' : `${level}: `;
        write(`${at} vmpm watch${vm ? ` [${vm}]` : ''}: ${tag}${message}\n`);
      }
    },
  };
}

function bigintAsHex(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}
