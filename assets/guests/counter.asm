; vmpm test guest: keeps counting while it runs, for the background-snapshot tests
; (build: nasm -f bin -o counter.bin counter.asm; run with -m 64M).
;
; 32-bit protected mode, flat segments. ECX is the counter; each loop increments it and stores it,
; in this order, at three pages far apart: 0x00100000 (A), 0x02000000 (B), 0x03f00000 (C). At any
; instruction boundary, then, A >= B >= C >= A - 1 and ECX - 1 <= C <= ECX. A capture taken at one
; instant satisfies both; one that reads pages at different times (a running guest dumped page by
; page) does not. EBX holds a marker (0xC0DE0C0D) so tests can tell this guest's registers apart.

bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    in al, 0x92                 ; fast A20, so 0x100000 is not 0x0
    or al, 2
    out 0x92, al
    lgdt [gdt_ptr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm

bits 32
pm:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00
    mov ebx, 0xC0DE0C0D
    xor ecx, ecx
.loop:
    inc ecx
    mov [0x00100000], ecx
    mov [0x02000000], ecx
    mov [0x03f00000], ecx
    jmp .loop

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08: code, flat 4 GiB
    dq 0x00cf92000000ffff       ; 0x10: data, flat 4 GiB
gdt_ptr:
    dw gdt_ptr - gdt - 1
    dd gdt

times 510 - ($ - $$) db 0
dw 0xaa55
