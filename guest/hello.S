// hello: prints one line on the serial port, naming its vCPU, then reports
// DONE. Each byte is one exit: fine for a greeting, never for a hot path.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_hello_start, kvmlab_guest_hello_end
kvmlab_guest_hello_start:
        mov $KVMLAB_PORT_SERIAL, %dx
        lea message(%rip), %rsi
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      mov MB_VCPU(%rdi), %rax      // decimal digits of the vCPU index,
        mov $10, %rcx                // pushed least significant first
        xor %r8, %r8
3:      xor %edx, %edx
        div %rcx
        add $'0', %dl
        push %rdx
        inc %r8
        test %rax, %rax
        jnz 3b
        mov $KVMLAB_PORT_SERIAL, %dx
4:      pop %rax
        out %al, %dx
        dec %r8
        jnz 4b
        mov $'\n', %al
        out %al, %dx
5:      mov $KVMLAB_EVENT_DONE, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 5b
message:
        .asciz "Hello from a kvmlab guest on vCPU "
kvmlab_guest_hello_end:
        .section .note.GNU-stack,"",@progbits
