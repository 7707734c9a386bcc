/* Per-thread event rings (io/rings.c): how allocator events reach the trace without a shared
 * lock. A hook puts its event in its own thread's ring, numbered by one process-wide counter;
 * whoever holds the event lock next with a reason to merges all rings into the active buffer in
 * number order (docs/design-shim.md, "Event rings"). */
#ifndef LEAKTRACE_RINGS_H
#define LEAKTRACE_RINGS_H

#include "../base/base.h"
#include "../format/records.h"
#include "fold.h"

#define LT_RING_EVENTS 2048   /* a power of two */

struct lt_ring {
    _Alignas(64) _Atomic uint64_t head;   /* events published (the owner writes) */
    _Atomic int in_flight;                /* the owner holds a number not yet published */
    _Alignas(64) _Atomic uint64_t tail;   /* events merged (under the event lock) */
    uint64_t tid;                         /* the owner's */
    struct lt_fold_thread fold;           /* the owner's latest allocation (mergers only) */
    int slot;                             /* index in the registry */
    struct lt_ring *next_free;
    _Alignas(64) struct lt_event events[LT_RING_EVENTS];
};

/* Numbers allocator events; its own cache line, the one every hook touches. */
extern _Atomic uint64_t lt_event_seq;
/* Nonzero while a fork merges the rings: hooks wait before taking a number. */
extern _Atomic int lt_rings_closed;
/* Microseconds since start, advanced by the writer thread every tick (io/writer.c): hooks read
 * this instead of calling clock_gettime on every event. */
extern _Atomic uint64_t lt_tick_us;

LT_HIDDEN struct lt_ring *lt_ring_claim(void);
LT_HIDDEN void lt_ring_make_room(struct lt_ring *r);
LT_HIDDEN void lt_rings_wait_open(void);
/* Merges every event numbered below the counter's value now, and writes the events the fold
 * holds back (the event lock is held). */
LT_HIDDEN void lt_rings_drain_locked(void);
/* The same, leaving the fold's events held (the writer's ticks between flushes). */
LT_HIDDEN void lt_rings_merge_locked(void);
/* For a signal handler holding the event lock: merges only if that cannot wait for the writer.
 * Returns 0 when it did not. */
LT_HIDDEN int lt_rings_drain_nowait_locked(void);
/* Appends an event of a thread without a ring, under the event lock (the rings merged first). */
LT_HIDDEN void lt_append_event_locked(const struct lt_event *e, uint64_t tid);
LT_HIDDEN void lt_rings_init(void);
/* Fork: no thread takes a number from lt_rings_close until lt_rings_open. */
LT_HIDDEN void lt_rings_close(void);
LT_HIDDEN void lt_rings_open(void);
LT_HIDDEN void lt_rings_after_fork(void);

/* Puts an allocator event in the calling thread's ring; returns 0 when the thread has no ring
 * (the caller then appends it under the event lock). The hot path of every hook. */
static inline int lt_ring_push(struct lt_event *e) {
    struct lt_ring *r = lt_self.ring;
    if (LT_UNLIKELY(!r) && !(r = lt_ring_claim())) return 0;
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (LT_UNLIKELY(head - atomic_load_explicit(&r->tail, memory_order_acquire) >= LT_RING_EVENTS))
        lt_ring_make_room(r);
    /* in_flight needs no fence of its own: on x86-64 the locked add that takes the number
     * makes the store visible first, so a merger that read the counter past our number sees
     * the flag. Numbers need not be dense: one taken and dropped at a closed door is a gap. */
    for (;;) {
        atomic_store_explicit(&r->in_flight, 1, memory_order_relaxed);
        e->seq = atomic_fetch_add(&lt_event_seq, 1);
        if (LT_LIKELY(!atomic_load_explicit(&lt_rings_closed, memory_order_relaxed))) break;
        atomic_store_explicit(&r->in_flight, 0, memory_order_release);
        lt_rings_wait_open();
    }
    e->time_us = atomic_load_explicit(&lt_tick_us, memory_order_relaxed);
    r->events[head & (LT_RING_EVENTS - 1)] = *e;
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    atomic_store_explicit(&r->in_flight, 0, memory_order_release);
    return 1;
}

#endif
