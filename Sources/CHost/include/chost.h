#ifndef CHOST_H
#define CHOST_H

// Host helpers Swift cannot reach on its own: raw system calls glibc does
// not declare without _GNU_SOURCE, signal plumbing, CPU pinning, the TSC
// and ordered loads and stores of memory shared with a running guest.
// Nothing here knows KVM: that is CKVM's.

#include <sys/mman.h>
#include <sys/syscall.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <pthread.h>
#include <unistd.h>
#include <linux/perf_event.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static const int HOST_MADV_POPULATE_WRITE = MADV_POPULATE_WRITE;

// memfd_create and madvise without libc version games.
static inline int host_memfd(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}
static inline int host_memfd_flags_hugetlb(int log2size) {
    return 0x0004 /* MFD_HUGETLB */ | (log2size << 26);
}
static inline int host_map_hugetlb_flags(int log2size) {
    return MAP_HUGETLB | (log2size << MAP_HUGE_SHIFT);
}
static inline pid_t host_gettid(void) { return (pid_t)syscall(SYS_gettid); }

// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): frees a file's pages
// (glibc declares fallocate only under _GNU_SOURCE).
static inline int host_punch_hole(int fd, int64_t offset, int64_t length) {
    return (int)syscall(SYS_fallocate, fd, 3, (off_t)offset, (off_t)length);
}

// perf_event_open(2) counting one kernel tracepoint (its tracefs id): no
// sampling, enabled at once. pid 0 and cpu -1 count this process; with
// `inherit` the count also covers every thread it creates afterwards (the
// vCPU threads), and reading it sums the live ones. pid -1 and a cpu count
// everything that runs on that CPU, kernel workers included.
static inline int host_perf_tracepoint_open(uint64_t id, int pid, int cpu, int inherit) {
    struct perf_event_attr attr = {0};
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = id;
    attr.inherit = inherit ? 1 : 0;
    return (int)syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

// A signal handler that does nothing: its only job is to make a blocking
// KVM_RUN return EINTR when the host wants a vCPU thread back.
static void host_kick_handler(int sig) { (void)sig; }
static inline int host_install_kick_handler(int sig) {
    struct sigaction sa = {0};
    sa.sa_handler = host_kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; // no SA_RESTART: KVM_RUN must return EINTR
    return sigaction(sig, &sa, NULL);
}
// Unblocks `sig` in the calling thread (SIGINT and SIGTERM: a parent
// process may spawn kvmlab with signals blocked).
static inline int host_unblock_signal(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

// `mask`: the calling thread's signal mask without `sig`. 0 on success.
int host_mask_without(int sig, sigset_t *mask);

// Threads created with `attr` start with `mask` (glibc sets a new thread's
// mask in the thread anyway, so this costs the thread no system call).
// 0 or an error number.
int host_attr_set_sigmask(pthread_attr_t *attr, const sigset_t *mask);

// The calling thread stops sharing the process's descriptor table, as
// unshare(CLONE_FILES) does, and closes its copies of every descriptor
// above stderr but `keep_a` and `keep_b` (a copy would keep a pipe's write
// end open for good: its reader would never see EOF). 0 on success.
static inline int host_unshare_files_keeping(unsigned int keep_a, unsigned int keep_b) {
    if (syscall(SYS_unshare, 0x00000400 /* CLONE_FILES */) != 0) return -1;
    unsigned int keep[2] = {keep_a < keep_b ? keep_a : keep_b, keep_a < keep_b ? keep_b : keep_a};
    unsigned int first = 3;  // the lowest descriptor not yet kept or closed
    for (int i = 0; i < 2; i++) {
        if (keep[i] < first) continue;
        if (keep[i] > first && syscall(SYS_close_range, first, keep[i] - 1, 0) != 0) return -1;
        first = keep[i] + 1;
    }
    return syscall(SYS_close_range, first, ~0u, 0) == 0 ? 0 : -1;
}

// Pins the calling thread to one CPU (raw syscall: the glibc CPU_SET
// macros and pthread_setaffinity_np need _GNU_SOURCE, which Swift's Glibc
// module is not built with).
static inline int host_pin_self(int cpu) {
    uint64_t mask[16] = {0};
    if (cpu < 0 || cpu >= 1024) return -1;
    mask[cpu / 64] = 1ull << (cpu % 64);
    return (int)syscall(SYS_sched_setaffinity, 0, sizeof(mask), mask);
}

static inline uint64_t host_rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

// Mailbox words are shared with a running guest: the host must neither tear
// nor cache them.
// A spin-wait hint (PAUSE) for host threads polling guest memory.
static inline void host_cpu_relax(void) { __asm__ __volatile__("pause"); }

static inline uint64_t host_load_u64(const void *p) {
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}
static inline void host_store_u64(void *p, uint64_t v) {
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}
static inline uint32_t host_load_u32(const void *p) {
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}
static inline void host_store_u32(void *p, uint32_t v) {
    __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE);
}

// Routes SIGINT/SIGTERM to `pipe_write_fd` (see ckvm.c).
int host_install_stop_signals(int pipe_write_fd);

#endif
