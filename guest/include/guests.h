// The built-in guests, assembled into the kvmlab binary by SwiftPM.
#ifndef KVMLAB_GUESTS_H
#define KVMLAB_GUESTS_H
#include "guest_abi.h"

struct kvmlab_guest_blob {
    const unsigned char *start;
    const unsigned char *end;
    // Offset of a notable instruction (e.g. the faulting one), or 0.
    unsigned long marker;
};

// One line per guest: its start and end symbols (from guest/NAME.S) and
// kvmlab_guest_NAME(), which Swift's GuestImage.catalog names once.
#define KVMLAB_GUEST(name)                                                          \
    extern const unsigned char kvmlab_guest_##name##_start[];                       \
    extern const unsigned char kvmlab_guest_##name##_end[];                         \
    static inline struct kvmlab_guest_blob kvmlab_guest_##name(void) {              \
        return (struct kvmlab_guest_blob){kvmlab_guest_##name##_start, kvmlab_guest_##name##_end, 0}; \
    }

KVMLAB_GUEST(exceptions)
KVMLAB_GUEST(hello)
KVMLAB_GUEST(memstress)
KVMLAB_GUEST(spin)
KVMLAB_GUEST(ping)
KVMLAB_GUEST(jitter)
KVMLAB_GUEST(passes)
KVMLAB_GUEST(crwp)
KVMLAB_GUEST(triple)
KVMLAB_GUEST(dirtier)
KVMLAB_GUEST(migrator)

// The fault guest also marks its faulting instruction.
extern const unsigned char kvmlab_guest_fault_start[];
extern const unsigned char kvmlab_guest_fault_end[];
extern const unsigned char kvmlab_guest_fault_insn[];
static inline struct kvmlab_guest_blob kvmlab_guest_fault(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_fault_start, kvmlab_guest_fault_end,
        (unsigned long)(kvmlab_guest_fault_insn - kvmlab_guest_fault_start)};
}
#endif
