// The guest <-> host ABI, shared by the assembly guests and the Swift host.
//
// Every guest starts with RDI = GVA of its vCPU's mailbox (identity-mapped,
// so also its GPA) and RSI = the vCPU index. It reports to the host by
// writing its mailbox and then `out %al, $KVMLAB_PORT_EVENT` with AL = an
// event code; the host answers by resuming it (or not). Exceptions arrive
// on KVMLAB_PORT_EXCEPTION from the IDT stubs with AL = the vector.
#ifndef KVMLAB_GUEST_ABI_H
#define KVMLAB_GUEST_ABI_H

#define KVMLAB_PORT_EVENT 0xEA
#define KVMLAB_PORT_EXCEPTION 0xEB
#define KVMLAB_PORT_SERIAL 0x3F8

#define KVMLAB_EVENT_ITERATION 1  // one pass finished; results are in the mailbox
#define KVMLAB_EVENT_DONE 2       // the guest has finished successfully
#define KVMLAB_EVENT_FAIL 3       // the guest failed; MB_STATUS says why

// Mailbox offsets (bytes). Host-written parameters first.
#define MB_COMMAND 0x00      // 0 = keep going, 1 = stop at the next check
#define MB_ITERATION 0x08    // the iteration the host asks for
#define MB_REGION 0x10       // GVA of the vCPU's region
#define MB_PAGES 0x18        // pages in the region
#define MB_PAGE_SIZE 0x20    // distance between touched words
#define MB_WRITE_PCT 0x28    // 0...100: share of pages written, the rest read
#define MB_RANDOM 0x30       // nonzero: visit pages in a pseudo-random permutation
#define MB_SEED 0x38         // seeds the permutation and the write choice
#define MB_STAMP 0x40        // a written page gets the word MB_STAMP + page index
#define MB_VCPU 0x48         // the vCPU index
// Guest-written results.
#define MB_WRITES 0x80       // pages written in the last pass
#define MB_READS 0x88        // pages read in the last pass
#define MB_TSC_START 0x90    // TSC at the start of the last pass
#define MB_TSC_END 0x98      // TSC at its end
#define MB_DONE_ITERATION 0xA0
#define MB_CHECKSUM 0xA8     // sum of the words read, so reads are not elided
#define MB_STATUS 0xB0       // a failing guest's reason code

// jitter probe: parameters and results beyond the common ones.
#define MB_THRESHOLD 0x50        // gaps above this many TSC cycles become events
#define MB_EVENT_CAPACITY 0x58   // ring entries, a power of two
#define MB_LOOPS 0xB8            // loop iterations so far
#define MB_EVENT_INDEX 0xC0      // events recorded so far (ring index = this % capacity)
#define MB_BUCKETS 0x400         // 64 counters: gaps with floor(log2(gap)) = i
#define MB_BUCKET_COUNT 64
#define MB_EVENTS 0x1000         // ring of {u64 tsc at the gap's end, u64 gap}
#define MB_EVENTS_MAX 3840       // what fits below the mailbox's end

// Pass worker (memslot, and root-reload's dirtying vCPUs): the host sets
// the parameters, then raises MB_ITERATION; the guest makes one pass over
// MB_PAGES pages of MB_REGION (stride MB_PAGE_SIZE), touching the word at
// MB_OFFSET in each, then copies MB_ITERATION to MB_DONE_ITERATION and adds
// one to MB_LOOPS. No exits: the host polls the mailbox.
#define MB_OP 0x60               // what a pass does: PASS_* (root-reload: ROLE_TOGGLE_WP)
#define MB_OFFSET 0x68           // byte offset of the touched word in each page
#define MB_MISMATCHES 0x70       // PASS_VERIFY: pages whose word was not MB_STAMP + index
#define MB_FIRST_BAD 0x78        // PASS_VERIFY: the first such page index, or ~0
#define PASS_WRITE 1             // store MB_STAMP + page index
#define PASS_VERIFY 2            // compare with MB_STAMP + page index
#define PASS_WRITE_LOOP 3        // PASS_WRITE again and again until MB_OP changes
#define ROLE_TOGGLE_WP 4         // crwp guest: toggle CR0.WP (needs CPL0), count in MB_LOOPS
#define MB_TOGGLE_MASK 0xC8      // crwp: the CR0 bit(s) each flip toggles (the host sets CR0_WP)
#define CR0_WP 0x10000

// migrator (kvmlab migrate's workload): a dirtying vCPU first writes every
// page of its region once, then writes pages (sequentially or at random,
// within the first MB_MIG_ACTIVE pages, one every MB_MIG_INTERVAL TSC
// cycles or without pause); an idle vCPU computes without writing memory.
// A write adds one to the page's counter (word 0) and stores
// counter ^ page address ^ MB_STAMP in word 1, and adds one to MB_WRITES,
// so that after any migration the counters sum to MB_WRITES unless a page
// was lost. Every loop reads the TSC: gaps above MB_THRESHOLD are stalls
// {tsc at the gap's end, gap} in a ring, work done is counted per
// MB_MIG_SLOT_CYCLES slot in the timeline (entry = slot << 32 | count),
// and a TSC that went backwards is counted. MB_COMMAND = 1: verify every
// page (MB_MISMATCHES, MB_FIRST_BAD, MB_CHECKSUM = the counters' sum),
// then report done.
#define MB_MIG_ROLE 0xD0         // 0 = dirtying, 1 = idle
#define MB_MIG_INTERVAL 0xD8     // TSC cycles between writes; 0 = no pause
#define MB_MIG_SLOT_CYCLES 0xE0  // TSC cycles per timeline slot
#define MB_MIG_TSC_BASE 0xE8     // the guest TSC at timeline slot 0
#define MB_MIG_ACTIVE 0xF0       // pages written after the first pass (the hot set)
#define MB_MIG_WARM 0xF8         // guest: 1 once every page was written once
#define MB_MIG_SLOT_NOW 0x100    // guest: the slot it is counting in
#define MB_MIG_BACKWARDS 0x108   // guest: TSC reads lower than the one before
#define MB_MIG_STALLS 0x110      // guest: stalls recorded so far
#define MB_MIG_TIMELINE 0x1000   // 4096 slots of u64
#define MB_MIG_TIMELINE_SLOTS 4096
#define MB_MIG_STALL_RING 0x9000 // 1024 stalls of {u64 tsc, u64 gap}
#define MB_MIG_STALL_CAPACITY 1024
#define MIG_ROLE_IDLE 1

// Exception frame the IDT stubs leave at RSP (8-byte slots, lowest first):
// saved RAX, vector, error code (0 where the CPU pushes none), then the
// CPU's frame: RIP, CS, RFLAGS, RSP, SS.
#define EXC_FRAME_SLOTS 8
#define EXC_STUB_SIZE 16
#define EXC_VECTORS 32

#endif
