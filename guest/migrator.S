// migrator: kvmlab migrate's workload (see guest_abi.h, "migrator"). Runs
// at CPL3 without exits until MB_COMMAND asks it to verify.
//
// Registers: rdi mailbox, r8 region, r9 active pages, r10 interval,
// r11 slot cycles, r12 random state, r13 previous TSC, r14 current slot,
// r15 work in the current slot, rbx next write's TSC, rbp next sequential
// page, rsi the TSC read this loop.
#include "guest_abi.h"
#include "xorshift.inc"
        .text
        .globl kvmlab_guest_migrator_start, kvmlab_guest_migrator_end
kvmlab_guest_migrator_start:
        mov MB_REGION(%rdi), %r8
        mov MB_MIG_ACTIVE(%rdi), %r9
        mov MB_MIG_INTERVAL(%rdi), %r10
        mov MB_MIG_SLOT_CYCLES(%rdi), %r11
        mov MB_SEED(%rdi), %r12
        or $1, %r12                     // xorshift needs a nonzero state
        mov $-1, %r14
        xor %r15, %r15
        xor %ebp, %ebp
        cmpq $MIG_ROLE_IDLE, MB_MIG_ROLE(%rdi)
        je warm
        xor %eax, %eax                  // first pass: every page once
1:      cmp MB_PAGES(%rdi), %rax
        jae warm
        call write_page
        inc %rax
        jmp 1b
warm:   movq $1, MB_MIG_WARM(%rdi)
        rdtsc
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, %r13
        mov %rax, %rbx
loop:
        cmpq $0, MB_COMMAND(%rdi)
        jne verify
        rdtsc
        shl $32, %rdx
        or %rdx, %rax
        mov %rax, %rsi                  // rsi = now
        mov %rax, %rcx
        sub %r13, %rcx                  // rcx = gap
        jae 1f
        incq MB_MIG_BACKWARDS(%rdi)     // the TSC went backwards
        jmp 2f
1:      cmp MB_THRESHOLD(%rdi), %rcx
        jbe 2f
        mov MB_MIG_STALLS(%rdi), %rdx   // a stall: store it, then publish the count
        and $(MB_MIG_STALL_CAPACITY - 1), %rdx
        shl $4, %rdx
        mov %rsi, MB_MIG_STALL_RING(%rdi,%rdx)
        mov %rcx, MB_MIG_STALL_RING+8(%rdi,%rdx)
        incq MB_MIG_STALLS(%rdi)
2:      mov %rsi, %r13
        mov %rsi, %rax                  // slot = (now - base) / slot cycles
        sub MB_MIG_TSC_BASE(%rdi), %rax
        xor %edx, %edx
        div %r11
        cmp %r14, %rax
        je 3f
        mov %rax, %r14                  // a new slot
        xor %r15, %r15
        mov %r14, MB_MIG_SLOT_NOW(%rdi)
3:      cmpq $MIG_ROLE_IDLE, MB_MIG_ROLE(%rdi)
        je compute
        test %r10, %r10
        jz pick
        cmp %rbx, %rsi                  // paced: not yet time for the next write
        jb loop
        add %r10, %rbx
        mov %rsi, %rcx                  // more than a slot behind: do not burst
        sub %rbx, %rcx
        jb pick
        cmp %r11, %rcx
        jbe pick
        mov %rsi, %rbx
pick:   cmpq $0, MB_RANDOM(%rdi)
        jne 4f
        mov %rbp, %rax                  // sequential
        inc %rbp
        cmp %r9, %rbp
        jb 5f
        xor %ebp, %ebp
        jmp 5f
4:      XORSHIFT64 %r12, %rdx
        mov %r12, %rax                  // page = (random >> 32) * pages >> 32
        shr $32, %rax
        imul %r9, %rax
        shr $32, %rax
5:      call write_page
        jmp count
compute:
        mov $16, %ecx                   // a unit of work: 16 xorshift steps
6:      XORSHIFT64 %r12, %rdx
        dec %ecx
        jnz 6b
count:  inc %r15
        mov %r14, %rax                  // timeline[slot % 4096] = slot << 32 | work
        shl $32, %rax
        or %r15, %rax
        mov %r14, %rdx
        and $(MB_MIG_TIMELINE_SLOTS - 1), %rdx
        mov %rax, MB_MIG_TIMELINE(%rdi,%rdx,8)
        incq MB_LOOPS(%rdi)
        jmp loop

// write_page: page rax of the region gets counter + 1 and its check word.
write_page:
        mov %rax, %rdx
        shl $12, %rdx
        add %r8, %rdx
        mov (%rdx), %rcx
        inc %rcx
        mov %rcx, (%rdx)
        xor %rdx, %rcx
        xor MB_STAMP(%rdi), %rcx
        mov %rcx, 8(%rdx)
        incq MB_WRITES(%rdi)
        ret

verify:
        xor %eax, %eax                  // page
        xor %ecx, %ecx                  // mismatches
        xor %esi, %esi                  // sum of counters
        mov $-1, %rbx                   // first bad page
        cmpq $MIG_ROLE_IDLE, MB_MIG_ROLE(%rdi)
        je 9f
7:      cmp MB_PAGES(%rdi), %rax
        jae 9f
        mov %rax, %rdx
        shl $12, %rdx
        add %r8, %rdx
        mov (%rdx), %r10
        add %r10, %rsi
        xor %rdx, %r10
        xor MB_STAMP(%rdi), %r10
        cmp 8(%rdx), %r10
        je 8f
        inc %rcx
        cmp $-1, %rbx
        jne 8f
        mov %rax, %rbx
8:      inc %rax
        jmp 7b
9:      mov %rcx, MB_MISMATCHES(%rdi)
        mov %rbx, MB_FIRST_BAD(%rdi)
        mov %rsi, MB_CHECKSUM(%rdi)
10:     mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 10b
kvmlab_guest_migrator_end:
        .section .note.GNU-stack,"",@progbits
