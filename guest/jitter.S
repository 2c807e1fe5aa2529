// jitter: the stall probe. A tight CPL3 loop with no exits: read the TSC,
// take the gap since the last read, count it in a log2 bucket, record gaps
// above MB_THRESHOLD as events {tsc, gap} in a ring, touch one page of the
// vCPU's working set (so mappings the host zapped must fault back in), and
// poll MB_COMMAND. Every loop adds exactly one bucket count, so the buckets
// sum to MB_LOOPS when the guest stops.
//
// Registers: rdi mailbox, r8 working set, r9 its pages, r10 threshold,
// r11 ring mask, r12 page index, r13 loops, r14 events, r15 previous TSC.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_jitter_start, kvmlab_guest_jitter_end
kvmlab_guest_jitter_start:
        mov MB_REGION(%rdi), %r8
        mov MB_PAGES(%rdi), %r9
        mov MB_THRESHOLD(%rdi), %r10
        mov MB_EVENT_CAPACITY(%rdi), %r11
        dec %r11
        xor %r12, %r12
        xor %r13, %r13
        xor %r14, %r14
        rdtsc
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, %r15
probe:
        rdtsc
        shl $32, %rdx
        or %rdx, %rax                   // rax = now
        mov %rax, %rcx
        sub %r15, %rcx                  // rcx = gap
        mov %rax, %r15
        bsr %rcx, %rdx                  // bucket = floor(log2(gap)); 0 for gap 0
        jnz 1f
        xor %edx, %edx
1:      incq MB_BUCKETS(%rdi,%rdx,8)
        cmp %r10, %rcx
        jbe 2f
        mov %r14, %rdx                  // an event: store it, then publish the index
        and %r11, %rdx
        shl $4, %rdx
        mov %rax, MB_EVENTS(%rdi,%rdx)
        mov %rcx, MB_EVENTS+8(%rdi,%rdx)
        inc %r14
        mov %r14, MB_EVENT_INDEX(%rdi)
2:      mov %r12, %rdx                  // touch the next page of the working set
        shl $12, %rdx
        incq (%r8,%rdx)
        inc %r12
        cmp %r9, %r12
        jb 3f
        xor %r12, %r12
3:      inc %r13
        mov %r13, MB_LOOPS(%rdi)
        cmpq $0, MB_COMMAND(%rdi)
        je probe
4:      mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 4b
kvmlab_guest_jitter_end:
        .section .note.GNU-stack,"",@progbits
