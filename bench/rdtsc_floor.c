// The host-side floor for the jitter probe: cycles per loop of
// rdtsc + gap + store + one page touch, the same work the guest loop does,
// run natively on the host. Prints the median gap in cycles over 10M loops.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

int main(void) {
    enum { LOOPS = 10000000, PAGES = 512 };
    static uint64_t buckets[64];
    uint8_t *set = calloc(PAGES, 4096);
    uint64_t prev = rdtsc(), page = 0;
    for (long i = 0; i < LOOPS; i++) {
        uint64_t now = rdtsc(), gap = now - prev;
        prev = now;
        buckets[gap ? 63 - __builtin_clzll(gap) : 0]++;
        (*(volatile uint64_t *)(set + page * 4096))++;
        page = page + 1 == PAGES ? 0 : page + 1;
    }
    uint64_t seen = 0;
    for (int b = 0; b < 64; b++) {
        seen += buckets[b];
        if (seen >= LOOPS / 2) {
            printf("{\"median_gap_cycles_upper_bound\": %llu}\n", (unsigned long long)((1ull << (b + 1)) - 1));
            return 0;
        }
    }
    return 1;
}
