// fault: reads an address no page table maps, so the CPU raises #PF with
// CR2 = that address at kvmlab_guest_fault_insn.
        .text
        .globl kvmlab_guest_fault_start, kvmlab_guest_fault_end, kvmlab_guest_fault_insn
kvmlab_guest_fault_start:
        movabs $0x00007fff00000000, %rax   // PML4 slot 255: never mapped
kvmlab_guest_fault_insn:
        mov (%rax), %rbx
        jmp .
kvmlab_guest_fault_end:
        .section .note.GNU-stack,"",@progbits
