import { VmpmError } from '../../util/errors';

/** A migration stream that is not what QEMU writes (or not what this parser reads). */
export class MigrationFormatError extends VmpmError {}
