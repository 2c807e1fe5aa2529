// memstress: the dirty-logging workload. Each pass touches one word in
// every page of the vCPU's region, in order or in a pseudo-random
// permutation (every page exactly once either way, so dirty counts can be
// checked exactly). A page is written with probability MB_WRITE_PCT percent,
// otherwise read. After a pass the guest stores its counts and TSC stamps
// in the mailbox and exits once; the host resumes it for the next pass or
// sets MB_COMMAND to stop it.
//
// Registers: rdi mailbox, r8 region, r9 pages, r10 stride, r11 stamp,
// r12 write-choice LCG, r13 writes, r14 reads, r15 checksum.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_memstress_start, kvmlab_guest_memstress_end
kvmlab_guest_memstress_start:
next_pass:
        cmpq $0, MB_COMMAND(%rdi)
        jne stop
        rdtsc
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, MB_TSC_START(%rdi)
        mov MB_REGION(%rdi), %r8
        mov MB_PAGES(%rdi), %r9
        mov MB_PAGE_SIZE(%rdi), %r10
        mov MB_STAMP(%rdi), %r11
        mov MB_SEED(%rdi), %r12
        xor %r13, %r13
        xor %r14, %r14
        xor %r15, %r15
        cmpq $0, MB_RANDOM(%rdi)
        jne random_order

        xor %rcx, %rcx                  // sequential: page 0, 1, 2, ...
        cmpq $100, MB_WRITE_PCT(%rdi)
        jb sequential
        cmp $4096, %r10
        je write_all
sequential:
        cmp %r9, %rcx
        jae pass_done
        call touch
        inc %rcx
        jmp sequential

random_order:
        // A full-period LCG modulo m = 2^k >= pages (multiplier = 1 mod 4,
        // odd increment) visits every residue once; a bijective mix of its
        // output hides the LCG's weak low bits; values >= pages are skipped.
        mov %r9, %rbp
        dec %rbp                        // rbp = mask = m - 1
        mov %rbp, %rax
        shr $1, %rax
        or %rax, %rbp
        mov %rbp, %rax
        shr $2, %rax
        or %rax, %rbp
        mov %rbp, %rax
        shr $4, %rax
        or %rax, %rbp
        mov %rbp, %rax
        shr $8, %rax
        or %rax, %rbp
        mov %rbp, %rax
        shr $16, %rax
        or %rax, %rbp
        mov %rbp, %rax
        shr $32, %rax
        or %rax, %rbp
        mov %rbp, %rsi
        inc %rsi                        // rsi = steps left = m
        mov MB_SEED(%rdi), %rbx
        and %rbp, %rbx                  // rbx = LCG state
random_step:
        test %rsi, %rsi
        jz pass_done
        dec %rsi
        movabs $0x5851F42D4C957F2D, %rax
        imul %rax, %rbx
        movabs $0x14057B7EF767814F, %rax
        add %rax, %rbx
        and %rbp, %rbx
        mov %rbx, %rcx                  // mix: xorshift, odd multiply, xorshift
        mov %rcx, %rax
        shr $7, %rax
        xor %rax, %rcx
        movabs $0x9E3779B97F4A7C15, %rax
        imul %rax, %rcx
        and %rbp, %rcx
        mov %rcx, %rax
        shr $11, %rax
        xor %rax, %rcx
        cmp %r9, %rcx
        jae random_step
        push %rbx
        call touch
        pop %rbx
        jmp random_step

// Every page written in order, 4 KiB apart: the tight path, 2.5
// instructions a page (four pages a loop) instead of 16, which matters
// where CPL0 code is emulated one instruction at a time.
write_all:
        mov %r8, %rbx
        mov %r11, %rax
        mov %r9, %rcx
        shr $2, %rcx
        jz write_tail
write_four:
        mov %rax, (%rbx)
        inc %rax
        mov %rax, 4096(%rbx)
        inc %rax
        mov %rax, 8192(%rbx)
        inc %rax
        mov %rax, 12288(%rbx)
        inc %rax
        add $16384, %rbx
        loop write_four
write_tail:
        mov %r9, %rcx
        and $3, %rcx
        jz write_done
write_one:
        mov %rax, (%rbx)
        inc %rax
        add $4096, %rbx
        loop write_one
write_done:
        mov %r9, %r13
        jmp pass_done

pass_done:
        mov %r13, MB_WRITES(%rdi)
        mov %r14, MB_READS(%rdi)
        mov %r15, MB_CHECKSUM(%rdi)
        rdtsc
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, MB_TSC_END(%rdi)
        mov MB_ITERATION(%rdi), %rax
        mov %rax, MB_DONE_ITERATION(%rdi)
        mov $KVMLAB_EVENT_ITERATION, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp next_pass

stop:
        mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp stop

// touch page rcx: write stamp + index or read, as the write share decides.
// Clobbers rax, rbx, rdx.
touch:
        mov %rcx, %rbx
        imul %r10, %rbx
        add %r8, %rbx
        mov MB_WRITE_PCT(%rdi), %rdx
        cmp $100, %rdx
        jae write_page
        test %rdx, %rdx
        jz read_page
        movabs $0x5851F42D4C957F2D, %rax
        imul %rax, %r12
        movabs $0x14057B7EF767814F, %rax
        add %rax, %r12
        mov %r12, %rax
        shr $32, %rax
        imul $100, %rax, %rax
        shr $32, %rax                   // uniform in 0..99
        cmp %rdx, %rax
        jae read_page
write_page:
        mov %r11, %rax
        add %rcx, %rax
        mov %rax, (%rbx)
        inc %r13
        ret
read_page:
        add (%rbx), %r15
        inc %r14
        ret
kvmlab_guest_memstress_end:
        .section .note.GNU-stack,"",@progbits
