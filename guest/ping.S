// ping: one exit per loop, nothing else: `out` to the event port, the host
// answers by re-entering. Measures the userspace exit round trip.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_ping_start, kvmlab_guest_ping_end
kvmlab_guest_ping_start:
1:      incq MB_DONE_ITERATION(%rdi)
        mov $KVMLAB_EVENT_ITERATION, %al
        out %al, $KVMLAB_PORT_EVENT
        jmp 1b
kvmlab_guest_ping_end:
        .section .note.GNU-stack,"",@progbits
