// IDT stubs: one 16-byte stub per vector 0..31. Each builds a uniform frame
// (saved RAX, vector, error code) on top of the CPU's frame and reports the
// vector to the host, which reads the frame from guest memory and the other
// registers with KVM_GET_REGS. The host never resumes a faulted vCPU.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_exceptions_start, kvmlab_guest_exceptions_end
        .p2align 4
kvmlab_guest_exceptions_start:
.macro STUB vector, has_error
        .p2align 4
        .if \has_error == 0
        push $0
        .endif
        push $\vector
        push %rax
        mov $\vector, %al
        out %al, $KVMLAB_PORT_EXCEPTION
        jmp .
.endm
        STUB 0, 0
        STUB 1, 0
        STUB 2, 0
        STUB 3, 0
        STUB 4, 0
        STUB 5, 0
        STUB 6, 0
        STUB 7, 0
        STUB 8, 1
        STUB 9, 0
        STUB 10, 1
        STUB 11, 1
        STUB 12, 1
        STUB 13, 1
        STUB 14, 1
        STUB 15, 0
        STUB 16, 0
        STUB 17, 1
        STUB 18, 0
        STUB 19, 0
        STUB 20, 0
        STUB 21, 1
        STUB 22, 0
        STUB 23, 0
        STUB 24, 0
        STUB 25, 0
        STUB 26, 0
        STUB 27, 0
        STUB 28, 0
        STUB 29, 1
        STUB 30, 1
        STUB 31, 0
        .p2align 4
kvmlab_guest_exceptions_end:
        .section .note.GNU-stack,"",@progbits
