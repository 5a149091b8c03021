export { MigrationFormatError } from './errors';
export { PAGE_SIZE as MIGRATION_PAGE_SIZE, RAM_FLAG, SECTION_TYPE, QEVM_MAGIC, QEVM_VERSION } from './constants';
export { MigrationStreamParser, type MigrationRecord, type MigrationStreamEnd, type RamBlock, type MigrationParserOptions } from './stream';
export { decodeDeviceState, type DeviceSection, type DeviceState, type FieldValue } from './device-state';
export { locateVmdesc, parseVmdesc, type Vmdesc } from './vmdesc';
export { x86CpusFromDeviceState, type VmstateCpu } from './cpu-x86';
