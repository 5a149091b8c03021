; vmpm known-answer guest: a 512-byte x86 boot sector (build: nasm -f bin -o boot.bin boot.asm).
;
; It leaves evidence a post-mortem capture must find, then signals a panic:
;   registers  EAX=C0FFEE01 EBX=BADC0DE5 ECX=C0C0C0C0 EDX=D15C0505
;              ESI=5151AAAA EDI=D1D1BBBB EBP=B0B0CAFE ESP=00007C00
;   memory     64 KiB of "QMPLAB-PATTERN!\n" at physical 0x20000..0x2ffff
;              "FORENSIC-MARKER-1\0" at physical 0x30000
;   panic      out 0x505, al=1 (ISA pvpanic: GUEST_PANICKED), then cli/hlt forever.
; The register values double as the pvpanic write: DX=0x0505 is the port and AL=0x01 the "panicked"
; bit, so the final registers are exactly the known answers at the moment of the panic.
; src/guest/answers.ts mirrors these values; change both together.

bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov esp, 0x7c00             ; full 32 bits so ESP reads 00007c00 exactly
    cld

    ; 4096 copies of the 16-byte pattern = 64 KiB at 0x2000:0000 (phys 0x20000).
    mov ax, 0x2000
    mov es, ax
    xor di, di
    mov bx, 4096
.fill:
    mov si, pattern
    mov cx, 4                   ; 4 dwords = 16 bytes
    rep movsd
    dec bx
    jnz .fill

    ; The marker at 0x3000:0000 (phys 0x30000).
    mov ax, 0x3000
    mov es, ax
    xor di, di
    mov si, marker
    mov cx, marker_len
    rep movsb

    ; Known register answers (EDX and AL are also the pvpanic port and value).
    mov eax, 0xC0FFEE01
    mov ebx, 0xBADC0DE5
    mov ecx, 0xC0C0C0C0
    mov edx, 0xD15C0505
    mov esi, 0x5151AAAA
    mov edi, 0xD1D1BBBB
    mov ebp, 0xB0B0CAFE
    out dx, al                  ; pvpanic: bit 0 = guest panicked

.halt:
    cli
    hlt
    jmp .halt

pattern:    db "QMPLAB-PATTERN!", 10
marker:     db "FORENSIC-MARKER-1", 0
marker_len  equ $ - marker

    times 510 - ($ - $$) db 0
    dw 0xAA55
