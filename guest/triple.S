// triple: makes the CPU give up. It finds the IDT with SIDT (allowed at
// CPL3 without UMIP), clears every gate, then executes UD2: #UD finds no
// gate, nor does the #DF that follows, so the CPU triple-faults and KVM
// reports KVM_EXIT_SHUTDOWN. No correct guest does this; kvmlab's host
// must report it as a crash, never as a finished vCPU.
        .text
        .globl kvmlab_guest_triple_start, kvmlab_guest_triple_end
kvmlab_guest_triple_start:
        sub $16, %rsp
        sidt (%rsp)
        movzwl (%rsp), %ecx             // limit
        inc %ecx                        // bytes
        mov 2(%rsp), %rdi               // base
        xor %eax, %eax
        rep stosb
        ud2
        jmp .
kvmlab_guest_triple_end:
        .section .note.GNU-stack,"",@progbits
