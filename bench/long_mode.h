// What bench/exit_loop.c and bench/fault_floor.c share: a flat GDT, a TSS
// whose I/O bitmap allows every port (kvm_pvm consults it for CPL3 `out`
// whatever RFLAGS.IOPL says), and the registers that put a vCPU straight
// into 64-bit mode at CPL3 or CPL0. Both programs are single files plus
// this header, so each stays the smallest program doing its one thing.
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// Kernel code/data, user data/code at GDT (guest memory `mem`).
static void write_gdt(uint8_t *mem, uint64_t gdt_address) {
    uint64_t *gdt = (uint64_t *)(mem + gdt_address);
    gdt[1] = 0x00af9b000000ffffull;
    gdt[2] = 0x00cf93000000ffffull;
    gdt[3] = 0x00cff3000000ffffull;
    gdt[4] = 0x00affb000000ffffull;
}

// The TSS at `tss`: its bitmap (all zero) and the terminating 0xff byte.
static void write_tss(uint8_t *mem, uint64_t tss) {
    *(uint16_t *)(mem + tss + 0x66) = 0x68;
    mem[tss + 0x68 + 0x2000] = 0xff;
}

static void flat(struct kvm_segment *s, uint16_t selector, int code) {
    memset(s, 0, sizeof(*s));
    s->selector = selector;
    s->limit = 0xffffffff;
    s->present = 1;
    s->dpl = selector & 3;
    s->s = 1;
    s->g = 1;
    s->type = code ? 11 : 3;
    s->l = code;
    s->db = !code;
}

// Paging with the page tables at `pml4`, long mode, flat segments at `cpl`.
static void enter_long_mode(int cpu, int cpl, uint64_t pml4, uint64_t gdt_address, uint64_t tss) {
    struct kvm_sregs sregs;
    if (ioctl(cpu, KVM_GET_SREGS, &sregs)) die("KVM_GET_SREGS");
    sregs.cr0 = 0x80050033;
    sregs.cr3 = pml4;
    sregs.cr4 = 0x620;
    sregs.efer = 0xd01;
    flat(&sregs.cs, cpl == 3 ? 0x23 : 0x08, 1);
    flat(&sregs.ss, cpl == 3 ? 0x1b : 0x10, 0);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.base = tss;
    sregs.tr.limit = 0x68 + 0x2000;
    sregs.tr.selector = 0x28;
    sregs.tr.type = 11;
    sregs.tr.present = 1;
    sregs.gdt.base = gdt_address;
    sregs.gdt.limit = 7 * 8 - 1;
    if (ioctl(cpu, KVM_SET_SREGS, &sregs)) die("KVM_SET_SREGS");
}
