// crwp: kvmlab root-reload. A vCPU whose MB_OP is ROLE_TOGGLE_WP runs at
// CPL0 and flips CR0.WP in a loop (every flip makes KVM reset the vCPU's
// MMU context); any other vCPU is a pass worker dirtying its region.
// The toggler reports ready with one ITERATION event and starts flipping
// when the host resumes it; MB_LOOPS counts flips, each checked by reading
// CR0 back. MB_COMMAND = 1 stops it with WP set again. The bit flipped is
// MB_TOGGLE_MASK (CR0_WP), so the host can ask for one that cannot stick
// and see the read-back check fail.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_crwp_start, kvmlab_guest_crwp_end
kvmlab_guest_crwp_start:
        cmpq $ROLE_TOGGLE_WP, MB_OP(%rdi)
        jne pass_wait
        mov $KVMLAB_EVENT_ITERATION, %al
        out %al, $KVMLAB_PORT_EVENT
toggle:
        cmpq $0, MB_COMMAND(%rdi)
        jne toggle_stop
        mov %cr0, %rax
        xor MB_TOGGLE_MASK(%rdi), %rax
        mov %rax, %cr0
        mov %cr0, %rdx
        cmp %rax, %rdx
        jne toggle_lost
        incq MB_LOOPS(%rdi)
        jmp toggle
toggle_lost:
        movq $1, MB_STATUS(%rdi)        // CR0 did not take the new WP value
        mov $KVMLAB_EVENT_FAIL, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp toggle_lost
toggle_stop:
        mov %cr0, %rax
        or $CR0_WP, %rax
        mov %rax, %cr0
1:      mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 1b
#include "pass_worker.inc"
kvmlab_guest_crwp_end:
        .section .note.GNU-stack,"",@progbits
