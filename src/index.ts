// Library entry point: the layers vmpm is built from, for use from scripts.
export { VMPM_VERSION } from './version';
