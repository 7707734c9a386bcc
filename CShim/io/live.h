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

/* For the scan, after lt_live_sorted_locked: each block's slot keeps its index in `sorted`
 * instead of its size (the set is not used for anything else once the scan has begun), so
 * a pointer to a block's start finds the block in one probe. */
LT_HIDDEN void lt_live_number_locked(const struct lt_live_entry *sorted, uint64_t n);
/* The index of the block starting at `addr`, or -1 (mapping pieces are not numbered). */
LT_HIDDEN int64_t lt_live_number_of(uint64_t addr);
/* Asks the CPU for the slot lt_live_number_of(addr) will read first. */
LT_HIDDEN void lt_live_prefetch(uint64_t addr);

#endif
