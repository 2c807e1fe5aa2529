// CKVM: the KVM ABI as Swift can use it.
// Swift imports neither ioctl request macros nor variadic functions, so every
// request number is a `static const unsigned long` and every call goes
// through a non-variadic `static inline` shim.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>

// ---- Constants newer than the installed (6.1) headers -----------------
#ifndef KVM_CAP_USER_MEMORY2
#define KVM_CAP_USER_MEMORY2 231
#endif
#ifndef KVM_CAP_MEMORY_FAULT_INFO
#define KVM_CAP_MEMORY_FAULT_INFO 232
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_CAP_PRE_FAULT_MEMORY
#define KVM_CAP_PRE_FAULT_MEMORY 236
#endif
// KVM_PRE_FAULT_MEMORY (Linux 6.11): a vCPU ioctl that maps a GPA range.
struct ckvm_pre_fault_memory {
    uint64_t gpa;
    uint64_t size;
    uint64_t flags;
    uint64_t padding[5];
};
// KVM_CREATE_GUEST_MEMFD (Linux 6.8): a VM ioctl returning a memfd of guest memory.
struct ckvm_create_guest_memfd {
    uint64_t size;
    uint64_t flags;
    uint64_t reserved[6];
};
// KVM_SET_USER_MEMORY_REGION2 (Linux 6.8): a memslot that may be backed by
// a guest_memfd (flags KVM_MEM_GUEST_MEMFD).
struct ckvm_userspace_memory_region2 {
    uint32_t slot;
    uint32_t flags;
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t guest_memfd_offset;
    uint32_t guest_memfd;
    uint32_t pad1;
    uint64_t pad2[14];
};
#define CKVM_MEM_GUEST_MEMFD (1u << 2)
// KVM_CAP_GUEST_MEMFD_FLAGS (Linux 6.18) lists the flags KVM_CREATE_GUEST_MEMFD
// takes: MMAP lets the host map it, INIT_SHARED makes it ordinary (shared)
// memory, which a default VM may then bind.
#define CKVM_GUEST_MEMFD_FLAG_MMAP (1ull << 0)
#define CKVM_GUEST_MEMFD_FLAG_INIT_SHARED (1ull << 1)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef KVM_X86_QUIRK_SLOT_ZAP_ALL
#define KVM_X86_QUIRK_SLOT_ZAP_ALL (1 << 7)
#endif
#ifndef KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1 << 0)
#endif

// ---- Request numbers ---------------------------------------------------
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CKVM_CLEAR_DIRTY_LOG = KVM_CLEAR_DIRTY_LOG;
static const unsigned long CKVM_RESET_DIRTY_RINGS = KVM_RESET_DIRTY_RINGS;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
static const unsigned long CKVM_GET_STATS_FD = KVM_GET_STATS_FD;
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const int CKVM_EXIT_IO_OUT = KVM_EXIT_IO_OUT;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_PRE_FAULT_MEMORY = _IOWR(KVMIO, 0xd5, struct ckvm_pre_fault_memory);
static const unsigned long CKVM_CREATE_GUEST_MEMFD = _IOWR(KVMIO, 0xd4, struct ckvm_create_guest_memfd);
static const unsigned long CKVM_SET_USER_MEMORY_REGION2 = _IOW(KVMIO, 0x49, struct ckvm_userspace_memory_region2);
// The vCPU state a migration carries (KVM_GET_* on the source, KVM_SET_*
// on the destination).
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_XSAVE2 = KVM_GET_XSAVE2;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CKVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_SET_DEVICE_ATTR = KVM_SET_DEVICE_ATTR;
static const unsigned long CKVM_GET_DEVICE_ATTR = KVM_GET_DEVICE_ATTR;
static const unsigned long CKVM_HAS_DEVICE_ATTR = KVM_HAS_DEVICE_ATTR;
// The vCPU's TSC offset (guest TSC - host TSC) as a device attribute
// (Linux 5.16): exact, unlike writing IA32_TSC a moment after reading the host's.
static const uint32_t CKVM_VCPU_TSC_CTRL = KVM_VCPU_TSC_CTRL;
static const uint64_t CKVM_VCPU_TSC_OFFSET = KVM_VCPU_TSC_OFFSET;

// _BITUL() constants are not imported by Swift.
static const uint32_t CKVM_DIRTY_GFN_F_DIRTY = KVM_DIRTY_GFN_F_DIRTY;
static const uint32_t CKVM_DIRTY_GFN_F_RESET = KVM_DIRTY_GFN_F_RESET;

// ---- Non-variadic shims

// The guest's TSC (MSR 0x10) read with KVM_GET_MSRS, bracketed by host TSC
// reads so the caller can bound the guest-host TSC offset.
static inline int ckvm_guest_tsc(int vcpu_fd, uint64_t *guest, uint64_t *host_before, uint64_t *host_after) {
    // struct kvm_msrs ends in a flexible array: one buffer, header then entry.
    union {
        struct kvm_msrs header;
        unsigned char bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
    } msrs;
    struct kvm_msr_entry *entry = (struct kvm_msr_entry *)(msrs.bytes + sizeof(struct kvm_msrs));
    uint32_t lo, hi;
    for (size_t i = 0; i < sizeof msrs.bytes; i++) msrs.bytes[i] = 0;
    msrs.header.nmsrs = 1;
    entry->index = 0x10;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    *host_before = ((uint64_t)hi << 32) | lo;
    int got = ioctl(vcpu_fd, KVM_GET_MSRS, &msrs);
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    *host_after = ((uint64_t)hi << 32) | lo;
    *guest = entry->data;
    return got == 1 ? 0 : -1;
}
static inline int ckvm_ioctl(int fd, unsigned long request, unsigned long arg) {
    return ioctl(fd, request, arg);
}
static inline int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}
static inline int ckvm_open(const char *path, int flags) {
    return open(path, flags | O_CLOEXEC);
}

// kvm_run.immediate_exit is read by KVM_RUN on the vCPU thread while
// another thread sets it to get the vCPU back. The store is a release so
// that everything the stopping thread wrote before it (the stop reason) is
// visible to the vCPU thread that sees the flag; the signal sent after it
// (pthread_kill) is ordered after the store by the syscall itself, and the
// vCPU thread reads the flag again in the kernel on its next entry.
static inline void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value) {
    __atomic_store_n(&run->immediate_exit, value, __ATOMIC_RELEASE);
}

// The byte data of a KVM_EXIT_IO lives at `io.data_offset` inside kvm_run.
static inline uint8_t *ckvm_io_data(struct kvm_run *run) {
    return (uint8_t *)run + run->io.data_offset;
}

#endif
