/* The live set (io/live.c): every block and direct-mapping piece live in the process, as the
 * merge writes their events. The exit scan (core/reach.c) classifies them. Every function but
 * lt_live_init runs with the event lock held. */
#ifndef LEAKTRACE_LIVE_H
#define LEAKTRACE_LIVE_H

#include "../base/base.h"
#include "../format/records.h"

/* A live block, or a piece of a direct mapping (LT_LIVE_MAPPING set in `size`). */
struct lt_live_entry {
    uint64_t addr;
    uint64_t size;
};
#define LT_LIVE_MAPPING (1ull << 63)
#define LT_LIVE_SIZE(e) ((e)->size & ~LT_LIVE_MAPPING)

/* Maps the tables unless LEAKTRACE_REACHABILITY=0 (lt_config); returns whether the set is kept. */
LT_HIDDEN int lt_live_init(void);
LT_HIDDEN int lt_live_enabled(void);
/* 0 when the set stopped being kept (its table could not grow): it is then incomplete. */
LT_HIDDEN int lt_live_complete(void);

/* An allocator event as it is written (io/rings.c, lt_write_event_locked). */
LT_HIDDEN void lt_live_event_locked(const struct lt_event *e, uint64_t tid);
/* The program's mapping calls, as they succeeded (hooks/map_hooks.c); lengths in bytes. */
LT_HIDDEN void lt_live_mapped_locked(uint64_t start, uint64_t len);
LT_HIDDEN void lt_live_unmapped_locked(uint64_t start, uint64_t len);
LT_HIDDEN void lt_live_remapped_locked(uint64_t old_start, uint64_t old_len, uint64_t new_start, uint64_t new_len,
                                       int keep_old);

/* Live blocks and mapping pieces now. */
LT_HIDDEN uint64_t lt_live_count_locked(void);
/* Copies every entry to `out` (room for lt_live_count_locked entries), sorted by address,
 * using `scratch` (as large) for the sort. Returns the count. */
LT_HIDDEN uint64_t lt_live_sorted_locked(struct lt_live_entry *out, struct lt_live_entry *scratch);

/* The blocks' table: open addressing by address (0: an empty slot), linear probing from
 * lt_live_home. Each 1 KiB of addresses has its own run of 64 slots, at a place hashed from
 * the KiB: blocks allocated one after another (and the pointers between them) touch one run
 * of the table, a cache line or two, instead of a random slot each (a multiplicative hash of
 * every address made every insertion miss the cache once the table outgrew it). */
struct lt_live_table {
    struct lt_live_entry *slots;
    uint64_t mask;
    int shift;
};

static inline uint64_t lt_live_home(const struct lt_live_table *t, uint64_t addr) {
    return ((((addr >> 10) * 0x9E3779B97F4A7C15ull) >> t->shift) + ((addr >> 4) & 63)) & t->mask;
}

/* For the scan, after lt_live_sorted_locked: each block's slot keeps its index in `sorted`
 * in place of its size (the set serves nothing else once the scan has begun), so a pointer to
 * a block's start finds the block with one probe of the returned table. Mapping pieces are
 * not in the table. */
LT_HIDDEN struct lt_live_table lt_live_number_locked(const struct lt_live_entry *sorted, uint64_t n);

#endif
