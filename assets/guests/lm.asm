; vmpm long-mode known-answer guest: a 512-byte x86 boot sector (build: nasm -f bin -o lm.bin lm.asm).
;
; It switches from real mode to 64-bit long mode with paging on, runs from a higher-half alias, leaves
; evidence a post-mortem capture must find, then signals a panic through the ISA pvpanic port.
;   paging     PML4 at phys 0x1000 (CR3), PDPT 0x2000, PD 0x3000: 2 MiB pages mapping phys 0..1 GiB
;              both at virtual 0 (identity) and at 0xffff800000000000 (PML4 slot 256).
;   registers  RAX=C0FFEE00C0FFEE01 RBX=BADC0DE5BADC0DE5 RCX=C0C0C0C0C0C0C0C0 RDX=D15CD15CD15C0505
;              RSI=5151AAAA5151AAAA RDI=D1D1BBBBD1D1BBBB RBP=B0B0CAFEB0B0CAFE RSP=FFFF800000007C00
;              R8..R15 = 0x0808080808080808, 0x0909..09, 0x1010..10, 0x1111..11, ... 0x1515..15
;              CR3=0x1000, EFER=0x500 (LME|LMA), RIP inside the halt loop of the higher-half alias.
;   memory     64 KiB of "VMPM-LONGMODE-64" at phys 0x20000..0x2ffff, written through the higher-half
;              alias 0xffff800000020000; "LONG-MODE-MARKER\0" at phys 0x30000.
;   panic      out 0x505, al=1 (pvpanic: GUEST_PANICKED), then cli/hlt forever (no register changes).
; RAX's low byte (1) and RDX's low word (0x505) double as the pvpanic value and port.
; test/guest-extra/answers.ts mirrors these values; change both together.

bits 16
org 0x7c00

HIGH equ 0xffff800000000000

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld

    ; Zero the three page-table pages 0x1000..0x3fff.
    mov di, 0x1000
    mov cx, 0x3000 / 2
    rep stosw

    ; PML4[0] and PML4[256] -> PDPT; PDPT[0] -> PD (present | writable).
    mov word [0x1000], 0x2003
    mov word [0x1000 + 256 * 8], 0x2003
    mov word [0x2000], 0x3003
    ; PD[i] = i * 2 MiB | present | writable | page-size, for i = 0..511 (1 GiB).
    mov di, 0x3000
    mov eax, 0x83
.pd:
    mov [di], eax
    add eax, 0x200000
    add di, 8
    cmp di, 0x4000
    jne .pd

    lgdt [gdt_ptr]
    mov eax, 0x20               ; CR4.PAE
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov ecx, 0xC0000080         ; EFER.LME
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001          ; PG | PE
    mov cr0, eax
    jmp 0x08:long_entry

bits 64
long_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    ; Continue at the higher-half alias of this same code.
    mov rax, HIGH + high_entry
    jmp rax

high_entry:
    mov rsp, HIGH + 0x7c00
    ; 4096 copies of the 16-byte pattern = 64 KiB at phys 0x20000, through the alias.
    mov rdi, HIGH + 0x20000
    mov ecx, 4096
.fill:
    mov rsi, HIGH + pattern
    movsq
    movsq
    dec ecx
    jnz .fill

    mov rdi, HIGH + 0x30000
    mov rsi, HIGH + marker
    mov ecx, marker_len
    rep movsb

    mov rax, 0xC0FFEE00C0FFEE01
    mov rbx, 0xBADC0DE5BADC0DE5
    mov rcx, 0xC0C0C0C0C0C0C0C0
    mov rdx, 0xD15CD15CD15C0505
    mov rsi, 0x5151AAAA5151AAAA
    mov rdi, 0xD1D1BBBBD1D1BBBB
    mov rbp, 0xB0B0CAFEB0B0CAFE
    mov r8,  0x0808080808080808
    mov r9,  0x0909090909090909
    mov r10, 0x1010101010101010
    mov r11, 0x1111111111111111
    mov r12, 0x1212121212121212
    mov r13, 0x1313131313131313
    mov r14, 0x1414141414141414
    mov r15, 0x1515151515151515
    out dx, al                  ; pvpanic: bit 0 = guest panicked

halt_loop:
    cli
    hlt
    jmp halt_loop

align 8
gdt:
    dq 0                        ; null
    dq 0x00af9a000000ffff       ; 0x08: 64-bit code, DPL 0
    dq 0x00cf92000000ffff       ; 0x10: data, DPL 0
gdt_ptr:
    dw gdt_ptr - gdt - 1
    dd gdt

pattern:    db "VMPM-LONGMODE-64"
marker:     db "LONG-MODE-MARKER", 0
marker_len  equ $ - marker

    times 510 - ($ - $$) db 0
    dw 0xAA55
