// spin: loops forever without an exit; the watchdog must end it.
        .text
        .globl kvmlab_guest_spin_start, kvmlab_guest_spin_end
kvmlab_guest_spin_start:
1:      pause
        jmp 1b
kvmlab_guest_spin_end:
        .section .note.GNU-stack,"",@progbits
