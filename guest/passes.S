// passes: the pass worker alone (kvmlab memslot). The host drives it through
// the mailbox without exits: write or verify stamps over a region, once per
// request or in a loop.
#include "guest_abi.h"
        .text
        .globl kvmlab_guest_passes_start, kvmlab_guest_passes_end
kvmlab_guest_passes_start:
#include "pass_worker.inc"
kvmlab_guest_passes_end:
        .section .note.GNU-stack,"",@progbits
