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

#define KVMLAB_DECLARE_GUEST(name)                                              \
    extern const unsigned char kvmlab_guest_##name##_start[];                   \
    extern const unsigned char kvmlab_guest_##name##_end[];

KVMLAB_DECLARE_GUEST(exceptions)
KVMLAB_DECLARE_GUEST(hello)
KVMLAB_DECLARE_GUEST(memstress)
KVMLAB_DECLARE_GUEST(spin)
KVMLAB_DECLARE_GUEST(ping)
KVMLAB_DECLARE_GUEST(jitter)
KVMLAB_DECLARE_GUEST(fault)
KVMLAB_DECLARE_GUEST(passes)
KVMLAB_DECLARE_GUEST(crwp)
KVMLAB_DECLARE_GUEST(triple)
KVMLAB_DECLARE_GUEST(dirtier)
extern const unsigned char kvmlab_guest_fault_insn[];

static inline struct kvmlab_guest_blob kvmlab_guest_exceptions(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_exceptions_start, kvmlab_guest_exceptions_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_hello(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_hello_start, kvmlab_guest_hello_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_memstress(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_memstress_start, kvmlab_guest_memstress_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_spin(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_spin_start, kvmlab_guest_spin_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_ping(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_ping_start, kvmlab_guest_ping_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_jitter(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_jitter_start, kvmlab_guest_jitter_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_fault(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_fault_start, kvmlab_guest_fault_end,
        (unsigned long)(kvmlab_guest_fault_insn - kvmlab_guest_fault_start)};
}
static inline struct kvmlab_guest_blob kvmlab_guest_passes(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_passes_start, kvmlab_guest_passes_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_crwp(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_crwp_start, kvmlab_guest_crwp_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_triple(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_triple_start, kvmlab_guest_triple_end, 0};
}
static inline struct kvmlab_guest_blob kvmlab_guest_dirtier(void) {
    return (struct kvmlab_guest_blob){kvmlab_guest_dirtier_start, kvmlab_guest_dirtier_end, 0};
}
#endif
