// The floor for kvmlab's CPL3 populate and dirty-memory phases: the
// smallest C program that makes a CPL3 guest write one word per 4 KiB page
// of a memslot, twice: first touch (populate: KVM maps every page), then
// with dirty logging on after a KVM_GET_DIRTY_LOG (every page write-protected,
// so every write faults). One exit per pass. Prints JSON with both times.
//
// Build: cc -O2 -o fault_floor fault_floor.c    Run: ./fault_floor MIB
#include <fcntl.h>
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

#define SYS_SIZE (2 << 20)
#define PML4 0x1000
#define PDPT 0x2000
#define PD0 0x3000      // maps the first GiB (system memory)
#define PD1 0x4000      // maps the second GiB (the test slot)
#define GDT 0x5000
#define TSS 0x6000      // 104-byte TSS + 8 KiB I/O bitmap (all ports allowed)
#define CODE 0x10000
#define STACK 0x30000
#define TEST_GPA (1ull << 30)

static double pass(int cpu, struct kvm_run *run) {
    double start = now();
    if (ioctl(cpu, KVM_RUN, 0)) die("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO || run->io.port != 0xea) {
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        exit(1);
    }
    return now() - start;
}

int main(int argc, char **argv) {
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 512;
    if (mib < 2 || mib > 1024 || mib % 2) { fprintf(stderr, "MIB: an even number from 2 to 1024\n"); return 2; }
    uint64_t size = mib << 20, pages = size >> 12;
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    uint8_t *sys = mmap(NULL, SYS_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint8_t *test = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    madvise(test, size, MADV_NOHUGEPAGE);  // 4 KiB host pages, like kvmlab's anonymous backing
    struct kvm_userspace_memory_region slot0 = {.slot = 0, .memory_size = SYS_SIZE, .userspace_addr = (uint64_t)sys};
    struct kvm_userspace_memory_region slot1 = {.slot = 1, .guest_phys_addr = TEST_GPA, .memory_size = size, .userspace_addr = (uint64_t)test};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot0) || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot1)) die("KVM_SET_USER_MEMORY_REGION");

    uint64_t *pml4 = (uint64_t *)(sys + PML4), *pdpt = (uint64_t *)(sys + PDPT);
    uint64_t *pd0 = (uint64_t *)(sys + PD0), *pd1 = (uint64_t *)(sys + PD1);
    pml4[0] = PDPT | 7;
    pdpt[0] = PD0 | 7;
    pdpt[1] = PD1 | 7;
    pd0[0] = 0x87;  // 2 MiB user pages: guest pages are 2 MiB, host pages 4 KiB
    for (uint64_t i = 0; i < size >> 21; i++) pd1[i] = (TEST_GPA + (i << 21)) | 0x87;
    write_gdt(sys, GDT);
    write_tss(sys, TSS);
    // loop: rbx = TEST_GPA, rcx = pages; mov rax,(rbx); add $4096,rbx; dec rcx; jnz; out; jmp loop
    uint8_t code[64], *p = code;
    *p++ = 0x48; *p++ = 0xbb; memcpy(p, &(uint64_t){TEST_GPA}, 8); p += 8;           // movabs $TEST_GPA, %rbx
    *p++ = 0x48; *p++ = 0xb9; memcpy(p, &pages, 8); p += 8;                           // movabs $pages, %rcx
    uint8_t *body = p;
    *p++ = 0x48; *p++ = 0x89; *p++ = 0x03;                                            // mov %rax, (%rbx)
    *p++ = 0x48; *p++ = 0x81; *p++ = 0xc3; memcpy(p, &(uint32_t){4096}, 4); p += 4;   // add $4096, %rbx
    *p++ = 0x48; *p++ = 0xff; *p++ = 0xc9;                                            // dec %rcx
    *p++ = 0x75; *p = (uint8_t)(body - (p + 1)); p++;                                 // jnz body
    *p++ = 0xe6; *p++ = 0xea;                                                         // out %al, $0xea
    *p++ = 0xeb; *p = (uint8_t)(code - (p + 1)); p++;                                 // jmp start
    memcpy(sys + CODE, code, p - code);

    int cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (cpu < 0) die("KVM_CREATE_VCPU");
    struct {
        struct kvm_cpuid2 header;
        struct kvm_cpuid_entry2 entries[256];
    } cpuid = {.header.nent = 256};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0) ioctl(cpu, KVM_SET_CPUID2, &cpuid);
    struct kvm_run *run = mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
    enter_long_mode(cpu, 3, PML4, GDT, TSS);
    struct kvm_regs regs = {.rip = CODE, .rsp = STACK, .rax = 0x5a5a, .rflags = 0x3002};
    if (ioctl(cpu, KVM_SET_REGS, &regs)) die("KVM_SET_REGS");

    double populate = pass(cpu, run);
    slot1.flags = KVM_MEM_LOG_DIRTY_PAGES;
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot1)) die("enable dirty logging");
    uint64_t *bitmap = calloc(pages / 64 + 1, 8);
    struct kvm_dirty_log log = {.slot = 1, .dirty_bitmap = bitmap};
    if (ioctl(vm, KVM_GET_DIRTY_LOG, &log)) die("KVM_GET_DIRTY_LOG");
    double dirty = pass(cpu, run);
    if (ioctl(vm, KVM_GET_DIRTY_LOG, &log)) die("KVM_GET_DIRTY_LOG");
    uint64_t dirtied = 0;
    for (uint64_t i = 0; i < pages / 64; i++) dirtied += __builtin_popcountll(bitmap[i]);
    printf("{\"pages\": %llu, \"populate_seconds\": %.9f, \"dirty_seconds\": %.9f, \"pages_dirty\": %llu}\n",
           (unsigned long long)pages, populate, dirty, (unsigned long long)dirtied);
    return dirtied == pages ? 0 : 1;
}
