// The reference for `make bench`: the smallest C program that does what
// `kvmlab exit-latency` measures. Each vCPU in 64-bit mode at CPL3 (or CPL0)
// runs `incq (%rdi); out %al, $0xea; jmp` and the host re-enters KVM_RUN
// after every exit, one thread per vCPU. Prints: exits, seconds,
// microseconds per exit, and (for VM start) the seconds to create the VM
// and its vCPUs and to run them.
//
// Build: cc -O2 -pthread -o exit_loop exit_loop.c    Run: ./exit_loop EXITS [CPL [VCPUS [TSS]]]
// TSS "per-vcpu" gives each vCPU its own TSS as kvmlab does (default
// "shared": one for all), to measure what that costs.
#include <fcntl.h>
#include <pthread.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "long_mode.h"

#define MEM_SIZE (1 << 30) // MAP_NORESERVE: only touched pages are allocated
#define PML4 0x1000
#define PDPT 0x2000
#define PD 0x3000
#define GDT 0x4000
#define TSS 0x5000 // 104-byte TSS + 8 KiB I/O bitmap (all ports allowed)
#define CODE 0x10000
// Each vCPU counts its exits in its own page, 128 KiB apart, where kvmlab's
// layout puts its vCPUs' mailboxes: a guest's first write to a page is a
// shadow-MMU fault, so one shared page would be a cheaper guest than kvmlab's.
#define MAILBOXES 0x200000
#define MAILBOX_STRIDE 0x20000
#define STACK 0x30000
#define TSS_OFFSET 0x10000 // TSS "per-vcpu": 64 KiB into each vCPU's 128 KiB, as in kvmlab's layout
#define MAX_VCPUS 4096

struct vcpu {
    int fd;
    struct kvm_run *run;
    long exits;
    pthread_t thread;
};

static void *run_vcpu(void *arg) {
    struct vcpu *v = arg;
    for (long i = 0; i < v->exits; i++) {
        if (ioctl(v->fd, KVM_RUN, 0)) { perror("KVM_RUN"); exit(1); }
        if (v->run->exit_reason != KVM_EXIT_IO || v->run->io.port != 0xea) {
            fprintf(stderr, "unexpected exit %u\n", v->run->exit_reason);
            exit(1);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    long exits = argc > 1 ? atol(argv[1]) : 100000;
    int cpl = argc > 2 ? atoi(argv[2]) : 3;
    int count = argc > 3 ? atoi(argv[3]) : 1;
    int tss_per_vcpu = argc > 4 && strcmp(argv[4], "per-vcpu") == 0;
    if (argc > 4 && !tss_per_vcpu && strcmp(argv[4], "shared") != 0) { fprintf(stderr, "TSS: shared or per-vcpu\n"); return 2; }
    if (count < 1 || count > MAX_VCPUS) { fprintf(stderr, "VCPUS: 1 to %d\n", MAX_VCPUS); return 2; }
    double created = now();
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region region = {.slot = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)) die("KVM_SET_USER_MEMORY_REGION");

    uint64_t *pml4 = (uint64_t *)(mem + PML4), *pdpt = (uint64_t *)(mem + PDPT), *pd = (uint64_t *)(mem + PD);
    pml4[0] = PDPT | 7;
    pdpt[0] = PD | 7;
    for (int i = 0; i < 512; i++) pd[i] = ((uint64_t)i << 21) | 0x87; // 2 MiB user pages cover 1 GiB
    write_gdt(mem, GDT);
    write_tss(mem, TSS);
    static const uint8_t code[] = {0x48, 0xff, 0x07, 0xb0, 0x01, 0xe6, 0xea, 0xeb, 0xf7};
    memcpy(mem + CODE, code, sizeof(code));

    struct {
        struct kvm_cpuid2 header;
        struct kvm_cpuid_entry2 entries[256];
    } cpuid = {.header.nent = 256};
    int have_cpuid = ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0;
    int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    static struct vcpu vcpus[MAX_VCPUS];
    for (int i = 0; i < count; i++) {
        int cpu = ioctl(vm, KVM_CREATE_VCPU, i);
        if (cpu < 0) die("KVM_CREATE_VCPU");
        if (have_cpuid) ioctl(cpu, KVM_SET_CPUID2, &cpuid);
        vcpus[i] = (struct vcpu){.fd = cpu, .exits = exits,
                                 .run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0)};
        uint64_t tss = tss_per_vcpu ? MAILBOXES + (uint64_t)i * MAILBOX_STRIDE + TSS_OFFSET : TSS;
        if (tss_per_vcpu) write_tss(mem, tss);
        enter_long_mode(cpu, cpl, PML4, GDT, tss);
        struct kvm_regs regs = {.rip = CODE, .rsp = STACK, .rdi = MAILBOXES + (uint64_t)i * MAILBOX_STRIDE, .rflags = 0x3002};
        if (ioctl(cpu, KVM_SET_REGS, &regs)) die("KVM_SET_REGS");
    }
    double start = now();
    for (int i = 0; i < count; i++)
        if (pthread_create(&vcpus[i].thread, NULL, run_vcpu, &vcpus[i])) die("pthread_create");
    for (int i = 0; i < count; i++) pthread_join(vcpus[i].thread, NULL);
    double seconds = now() - start;
    uint64_t counted = 0;
    for (int i = 0; i < count; i++) counted += *(uint64_t *)(mem + MAILBOXES + (uint64_t)i * MAILBOX_STRIDE);
    printf("{\"vcpus\": %d, \"exits\": %ld, \"guest_exits\": %llu, \"create_seconds\": %.9f, \"seconds\": %.9f, \"us_per_exit\": %.3f}\n",
           count, exits * count, (unsigned long long)counted, start - created, seconds, seconds / exits * 1e6);
    return counted == (uint64_t)(exits * count) ? 0 : 1;
}
