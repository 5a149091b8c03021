/** ELF cores: header and program headers, streaming reader, notes and QEMU's per-vCPU note decoders. */
export * from './constants';
export * from './header';
export * from './core-stream';
export * from './notes';
export * from './cpu-notes';
