; vmpm VMCOREINFO guest: a 512-byte x86 boot sector (build: nasm -f bin -o vmcoreinfo.bin vmcoreinfo.asm).
;
; Does what a Linux kernel with qemu_fw_cfg does for `-device vmcoreinfo`, in miniature: builds an ELF
; note "VMCOREINFO" whose text is VMCI_TEXT at phys 0x40000, finds the fw_cfg file "etc/vmcoreinfo" in
; the fw_cfg directory (I/O ports 0x510/0x511) and writes {host_format 0, guest_format 1 (ELF),
; size, paddr 0x40000} into it with a fw_cfg DMA write (port 0x514). QEMU then adds that note to the
; ELF from dump-guest-memory, so a capture's `vmcoreinfo` section must hold VMCI_TEXT.
; Ends with out 0x505, al=1 (pvpanic). If the file is not found (no -device vmcoreinfo), it panics anyway.

bits 16
org 0x7c00

NOTE equ 0x40000                      ; where the note is built (segment 0x4000)
FWCFG_SEL equ 0x510
FWCFG_DATA equ 0x511
FWCFG_DMA equ 0x514

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    cld

    ; The note: namesz 11, descsz, type 0, "VMCOREINFO\0" padded to 12, then the text padded to 4.
    mov ax, NOTE >> 4
    mov es, ax
    xor di, di
    mov eax, 11
    stosd
    mov eax, vmci_len
    stosd
    xor eax, eax
    stosd
    mov si, note_name
    mov cx, 12
    rep movsb
    mov si, vmci_text
    mov cx, vmci_len_padded
    rep movsb

    ; fw_cfg directory (selector 0x19): be32 count, then 64-byte entries {be32 size, be16 select, be16 0, name[56]}.
    mov dx, FWCFG_SEL
    mov ax, 0x19
    out dx, ax
    mov dx, FWCFG_DATA
    call read_be32
    mov bp, ax                          ; entry count (small)
.entry:
    test bp, bp
    jz .panic
    dec bp
    call read_be32                      ; size (ignored)
    call read_be16
    mov bx, ax                          ; select
    call read_be16                      ; reserved
    ; compare the 56-byte name with "etc/vmcoreinfo\0"
    mov si, file_name
    mov cx, 56
    xor ah, ah                          ; ah = mismatch flag
.name:
    in al, dx
    cmp si, file_name_end
    jae .tail
    cmp al, [si]
    je .same
    mov ah, 1
.same:
    inc si
.tail:
    loop .name
    test ah, ah
    jnz .entry

    ; FWCfgVMCoreInfo at 0x7e00: le16 host_format 0, le16 guest_format 1, le32 size, le64 paddr.
    mov word [0x7e00], 0
    mov word [0x7e02], 1
    mov dword [0x7e04], 24 + vmci_len_padded
    mov dword [0x7e08], NOTE
    mov dword [0x7e0c], 0
    ; FWCfgDmaAccess at 0x7e20 (big-endian): control = select << 16 | SELECT 0x08 | WRITE 0x10.
    movzx eax, bx
    shl eax, 16
    or eax, 0x18
    bswap eax
    mov [0x7e20], eax
    mov eax, 16
    bswap eax
    mov [0x7e24], eax
    mov dword [0x7e28], 0               ; address high (be)
    mov eax, 0x7e00
    bswap eax
    mov [0x7e2c], eax                   ; address low (be)
    ; Start the DMA: write the access address, high half to 0x514 then low half to 0x518 (big-endian).
    mov dx, FWCFG_DMA
    xor eax, eax
    out dx, eax
    mov dx, FWCFG_DMA + 4
    mov eax, 0x7e20
    bswap eax
    out dx, eax

.panic:
    mov dx, 0x505
    mov al, 1
    out dx, al
.halt:
    cli
    hlt
    jmp .halt

; Reads a big-endian dword from port dx (byte by byte) into eax.
read_be32:
    call read_be16
    shl eax, 16
read_be16:
    in al, dx
    mov ah, al
    in al, dx
    ret

note_name:  db "VMCOREINFO", 0, 0
file_name:  db "etc/vmcoreinfo", 0
file_name_end:
vmci_text:  db "OSRELEASE=vmpm-known-answer", 10, "PAGESIZE=4096", 10, "VMPM_MARKER=FORENSIC-VMCI-1", 10
vmci_len    equ $ - vmci_text
            times (4 - (vmci_len % 4)) % 4 db 0
vmci_len_padded equ $ - vmci_text

    times 510 - ($ - $$) db 0
    dw 0xAA55
