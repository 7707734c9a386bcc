/* Folding short-lived blocks (io/fold.c): the rings' merge hands every allocator event to the
 * fold in trace order; it holds the latest events back, and a block allocated and freed while
 * its ALLOC is still held is counted in the next FOLD record instead of being written as an
 * ALLOC and a FREE (docs/trace-format.md, FOLD). Everything else leaves in the same order.
 * Every function runs with the event lock held. */
#ifndef LEAKTRACE_FOLD_H
#define LEAKTRACE_FOLD_H

#include "../base/base.h"
#include "../format/records.h"

/* A thread's latest allocation, for counting temporary allocations (a release by the same
 * thread with no allocation or release of its own in between). Kept by the merge per ring. */
struct lt_fold_thread {
    uint64_t addr;
    uint32_t stack;
    uint8_t info;
    uint8_t valid;
    /* The thread's realloc in flight: the held number + 1 of the event that made the block its
     * REALLOC_RELEASE released (0: none held), and the REALLOC_RELEASE's own number. */
    uint64_t released_from, release_at;
};

/* Maps the fold's tables when folding is on (lt_config.events); 0 when it is off or the
 * memory could not be had (every event is then written). */
LT_HIDDEN int lt_fold_init(void);
LT_HIDDEN int lt_fold_enabled(void);
/* Events held back at most (the header's fold-window), 0 when not folding. */
LT_HIDDEN uint64_t lt_fold_window(void);
/* Makes room for one event; writes the oldest held events if needed (may let the event lock
 * go while a buffer rotates, like any append). Call before taking the event off its ring. */
LT_HIDDEN void lt_fold_make_room_locked(void);
/* Takes one event of thread `tid`, after lt_fold_make_room_locked; never lets the lock go. */
LT_HIDDEN void lt_fold_take_locked(const struct lt_event *e, uint64_t tid, struct lt_fold_thread *t);
/* Writes every held event, then the FOLD record if anything was folded: before any record
 * written directly, and at every flush interval. */
LT_HIDDEN void lt_fold_flush_locked(void);
/* Events held now: a bound on what lt_fold_flush_locked writes. */
LT_HIDDEN uint64_t lt_fold_held(void);
/* Blocks folded since start, for LEAKTRACE_VERBOSE. */
LT_HIDDEN uint64_t lt_fold_count(void);
LT_HIDDEN void lt_fold_after_fork(void);

/* Encodes an event with its context in the active buffer and counts it for END (io/rings.c). */
LT_HIDDEN void lt_write_event_locked(const struct lt_event *e, uint64_t tid);

#endif
