/** ELF constants vmpm reads and writes (System V gABI; Linux elf.h for the note types). */

export const ELF_MAGIC = 0x7f454c46;
/** EI_CLASS values. */
export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
/** EI_DATA values. */
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;

export const ET_CORE = 4;

export const PT_LOAD = 1;
export const PT_NOTE = 4;
/** e_phnum value meaning "the real count is in section header 0" (more than 65534 segments). */
export const PN_XNUM = 0xffff;

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export const NT_PRSTATUS = 1;
export const NT_PRFPREG = 2;
/** QEMU's own per-vCPU note ("QEMU" name, type 0): QEMUCPUState on x86. */
export const QEMU_NOTE_TYPE = 0;

/** Header and program-header entry sizes per class. */
export const EHDR_SIZE = { 32: 52, 64: 64 } as const;
export const PHDR_SIZE = { 32: 32, 64: 56 } as const;
