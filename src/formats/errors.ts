/**
 * The one error type of every parser in src/formats. It carries where the input is wrong (the format,
 * the file when known, the byte offset and the field) as data, so a caller can report, test or act on
 * a bad input without reading text; the one-line message is built from those fields.
 */
import { VmpmError } from '../util/errors';

export interface FormatErrorFields {
  /** The format being read, as users know it: "ELF notes", "ELF dump", "vmpm bundle", ... */
  format: string;
  /** What is wrong, in words (without the format or file prefix). */
  problem: string;
  /** The input file, when the parser knows it. */
  file?: string | undefined;
  /** Byte offset of the offending field within the input (the file, segment or buffer parsed). */
  offset?: number | undefined;
  /** The field whose value is wrong ("e_phoff", "descsz", "section table", ...). */
  field?: string | undefined;
  cause?: unknown;
}

export class FormatError extends VmpmError {
  readonly format: string;
  readonly problem: string;
  readonly file: string | undefined;
  readonly offset: number | undefined;
  readonly field: string | undefined;

  constructor(fields: FormatErrorFields) {
    super(formatErrorMessage(fields), fields.cause === undefined ? {} : { cause: fields.cause });
    this.name = 'FormatError';
    this.format = fields.format;
    this.problem = fields.problem;
    this.file = fields.file;
    this.offset = fields.offset;
    this.field = fields.field;
  }
}

/** "<format> (<file>): <problem>"; the offset and field are part of `problem` where a reader needs them. */
function formatErrorMessage(f: FormatErrorFields): string {
  return `${f.format}${f.file === undefined ? '' : ` (${f.file})`}: ${f.problem}`;
}
