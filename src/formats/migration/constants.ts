/**
 * Constants of QEMU's migration stream (version 3), as QEMU 7.2 writes them: migration/savevm.c
 * (section framing) and migration/ram.c (RAM page records). scripts/analyze-migration.py reads the
 * same values. Every multi-byte integer in the stream is big-endian.
 */
export const QEVM_MAGIC = 0x5145564d; // "QEVM"
export const QEVM_VERSION = 3;

/** Top-level section types (savevm.c QEMU_VM_*). */
export const SECTION_TYPE = {
  eof: 0x00,
  start: 0x01,
  part: 0x02,
  end: 0x03,
  full: 0x04,
  subsection: 0x05,
  vmdescription: 0x06,
  configuration: 0x07,
  command: 0x08,
  footer: 0x7e,
} as const;

/** RAM page record flags (ram.c RAM_SAVE_FLAG_*), in the low bits of each be64 address word. */
export const RAM_FLAG = {
  /** Obsolete since QEMU 1.x; never written any more. */
  full: 0x01,
  /** A page filled with one byte (the "zero" page; the fill byte follows). */
  zero: 0x02,
  /** The block list: the address word holds the total of every block's length. */
  memSize: 0x04,
  /** A whole page of data follows. */
  page: 0x08,
  /** End of this RAM section part. */
  eos: 0x10,
  /** Same RAM block as the previous page record (no block name follows). */
  continue: 0x20,
  xbzrle: 0x40,
  hook: 0x80,
  compressPage: 0x100,
  multifdFlush: 0x200,
} as const;

/** The only target page size this parser accepts (x86 and aarch64 `virt` guests). */
export const PAGE_SIZE = 4096;
/** Flag bits of a page record: everything below the page size. */
export const FLAG_MASK = PAGE_SIZE - 1;

/** The RAM section's name and the version QEMU 7.2 writes. */
export const RAM_SECTION_NAME = 'ram';
export const RAM_SECTION_VERSION = 4;
