; vmpm block-error guest: a 512-byte x86 boot sector (build: nasm -f bin -o blkread.bin blkread.asm).
;
; It reads sector 1 of BIOS drive 0x81 (the second IDE disk) through INT 13h. Tests attach that disk
; through QEMU's blkdebug driver with blkdebug-eio.cfg (every read_aio fails with EIO) and
; rerror=stop, so the read produces a real BLOCK_IO_ERROR and the VM stops in the io-error run state.
; Attach the error disk as the *secondary master* (-drive ...,if=ide,index=2): as primary slave QEMU
; 7.2 aborts in ide_handle_rw_error.
; If the read ever succeeds (a disk without errors, or a retry after `cont`), the guest writes
; "BLKREAD-OK" at phys 0x30000 and signals pvpanic (out 0x505, 1), so a test can tell the outcomes apart.

bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    cld

    mov ax, 0x0201              ; AH=2 read sectors, AL=1 sector
    mov cx, 0x0001              ; cylinder 0, sector 1
    mov dx, 0x0081              ; head 0, drive 0x81
    mov bx, 0x8000              ; ES:BX = 0:8000
    int 0x13

    mov ax, 0x3000
    mov es, ax
    xor di, di
    mov si, ok_text
    mov cx, ok_len
    rep movsb
    mov dx, 0x505
    mov al, 1
    out dx, al

.halt:
    cli
    hlt
    jmp .halt

ok_text:    db "BLKREAD-OK", 0
ok_len      equ $ - ok_text

    times 510 - ($ - $$) db 0
    dw 0xAA55
