/**
 * Splits a byte stream into newline-terminated lines (QMP frames every message as one line) while
 * never holding more than `maxLineBytes` of an unfinished line: a peer that sends an endless line
 * gets an error instead of exhausting memory.
 */
export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`line longer than ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

export class LineReader {
  private parts: Buffer[] = [];
  private pendingBytes = 0;
  private failed = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Feeds bytes; returns the complete lines (without "\n" or a trailing "\r"). Throws LineTooLongError. */
  push(chunk: Buffer): string[] {
    if (this.failed) return [];
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      this.check(this.pendingBytes + piece.length);
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.pendingBytes = 0;
      const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      lines.push(line.toString('utf8', 0, end));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(this.pendingBytes + rest.length);
      // Copy: the socket may reuse its buffer, and we keep this past the callback.
      this.parts.push(Buffer.from(rest));
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  /** Bytes of an unfinished line held right now. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private check(bytes: number): void {
    if (bytes > this.maxLineBytes) {
      this.failed = true;
      this.parts = [];
      this.pendingBytes = 0;
      throw new LineTooLongError(this.maxLineBytes);
    }
  }
}
