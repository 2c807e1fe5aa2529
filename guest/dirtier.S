// dirtier: writes random pages of its region without pause, the way a
// migrating guest does, for the concurrent-harvest check. Every loop it
// reads the host's generation (MB_ITERATION), acknowledges it
// (MB_DONE_ITERATION), then stores MB_STAMP | generation << 32 | page into a
// pseudo-random page (xorshift64, seeded by MB_SEED). The acknowledgement is
// stored before the write and after the previous one, so once the host sees
// generation n acknowledged, every write stamped below n has completed.
//
// Registers: rdi mailbox, r8 region, r9 pages, r11 stamp base, r12 random state.
#include "guest_abi.h"
#include "xorshift.inc"
        .text
        .globl kvmlab_guest_dirtier_start, kvmlab_guest_dirtier_end
kvmlab_guest_dirtier_start:
        mov MB_REGION(%rdi), %r8
        mov MB_PAGES(%rdi), %r9
        mov MB_STAMP(%rdi), %r11
        mov MB_SEED(%rdi), %r12
        or $1, %r12                     // xorshift needs a nonzero state
1:      cmpq $0, MB_COMMAND(%rdi)
        jne 2f
        mov MB_ITERATION(%rdi), %rcx    // generation
        mov %rcx, MB_DONE_ITERATION(%rdi)
        XORSHIFT64 %r12, %rdx
        mov %r12, %rax                  // page = (random >> 32) * pages >> 32
        shr $32, %rax
        imul %r9, %rax
        shr $32, %rax
        shl $32, %rcx                   // the word: stamp | generation << 32 | page
        or %r11, %rcx
        or %rax, %rcx
        shl $12, %rax
        mov %rcx, (%r8,%rax)
        incq MB_LOOPS(%rdi)
        jmp 1b
2:      mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 2b
kvmlab_guest_dirtier_end:
        .section .note.GNU-stack,"",@progbits
