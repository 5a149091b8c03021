; vmpm benchmark guest: fills guest RAM with a realistic mix of page contents, then panics
; (build: nasm -f bin -o fill.bin fill.asm). Used by bench/capture.ts with -m 1G.
;
; Long mode with 2 MiB identity pages over the first 1 GiB. Pages from 2 MiB up to FILL_END (a dword at
; offset 0x1f8 of this sector; the bench patches its copy: 0x40000000 = all of a 1 GiB guest, or
; 0x04200000 = only 64 MiB, the "mostly zero" case) get, by page number modulo 8:
;   0,1,2  left zero                     (37.5 %: free memory)
;   3      repeated English text         (compressible)
;   4      xorshift64 random             (incompressible: encrypted or compressed data)
;   5      pointer-like qwords           (kernel data structures: compressible)
;   6      one identical pseudo-random page (shared/duplicate pages: dedup)
;   7      random & 0x00ff00ff00ff00ff   (low entropy)
; Then out 0x505, al=1 (pvpanic) and cli/hlt.

bits 16
org 0x7c00

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    mov di, 0x1000
    mov cx, 0x3000 / 2
    rep stosw
    mov word [0x1000], 0x2003
    mov word [0x2000], 0x3003
    mov di, 0x3000
    mov eax, 0x83
.pd:
    mov [di], eax
    add eax, 0x200000
    add di, 8
    cmp di, 0x4000
    jne .pd
    lgdt [gdt_ptr]
    mov eax, 0x20
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax
    jmp 0x08:long_entry

bits 64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x7c00
    mov r15d, [fill_end]
    mov rbx, 0x2545F4914F6CDD1D      ; xorshift64 state
    mov r14, 0x9E3779B97F4A7C15      ; golden-ratio multiplier for the duplicate page
    mov rdi, 0x200000
.page:
    mov rax, rdi
    shr rax, 12
    and eax, 7
    cmp al, 3
    jb .skip
    je .text
    cmp al, 5
    jb .rand
    je .ptr
    cmp al, 6
    je .dup
.lowent:
    mov ecx, 512
.l7:
    call xorshift
    mov rax, 0x00ff00ff00ff00ff
    and rax, rbx
    stosq
    loop .l7
    jmp .next
.text:
    mov ecx, 64
.lt:
    mov rsi, text
    movsq
    movsq
    movsq
    movsq
    movsq
    movsq
    movsq
    movsq
    loop .lt
    jmp .next
.rand:
    mov ecx, 512
.lr:
    call xorshift
    mov rax, rbx
    stosq
    loop .lr
    jmp .next
.ptr:
    mov ecx, 512
    mov rax, 0xffff888000000000
    add rax, rdi
.lp:
    stosq
    add rax, 64
    loop .lp
    jmp .next
.dup:
    mov ecx, 512
    xor edx, edx
.ld:
    mov rax, rdx
    imul rax, r14
    stosq
    inc rdx
    loop .ld
    jmp .next
.skip:
    add rdi, 4096
.next:
    cmp rdi, r15
    jb .page

    mov dx, 0x505
    mov al, 1
    out dx, al
.halt:
    cli
    hlt
    jmp .halt

xorshift:
    mov rax, rbx
    shl rax, 13
    xor rbx, rax
    mov rax, rbx
    shr rax, 7
    xor rbx, rax
    mov rax, rbx
    shl rax, 17
    xor rbx, rax
    ret

align 8
gdt:
    dq 0
    dq 0x00af9a000000ffff
    dq 0x00cf92000000ffff
gdt_ptr:
    dw gdt_ptr - gdt - 1
    dd gdt

text: db "The quick brown fox jumps over the lazy dog; vmpm bench page. ", 10, 0

    times 0x1f8 - ($ - $$) db 0
fill_end:   dd 0x40000000
    times 510 - ($ - $$) db 0
    dw 0xAA55
