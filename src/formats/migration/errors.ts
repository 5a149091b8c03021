import { FormatError } from '../errors';

/** A migration stream that is not what QEMU writes (or not what this parser reads). */
export class MigrationFormatError extends FormatError {
  constructor(problem: string) {
    super({ format: 'QEMU migration stream', problem });
    this.name = 'MigrationFormatError';
  }
}
