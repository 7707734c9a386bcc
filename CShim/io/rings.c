/* Per-thread event rings: how allocation events reach the trace without a shared lock.
 *
 * A hook puts its event (already complete: address, size, path, stack id, time) into its own
 * thread's ring, stamped with a number from one process-wide counter. Whoever holds the event
 * lock next with a reason to (a thread whose ring is full, the writer's tick, any record that
 * is written directly: mappings, marks, modules, samples, END, fork) merges every ring's events
 * into the active buffer in counter order and encodes them there. The trace is exactly what the
 * single event lock used to produce: one order, consistent with the program's, since a hook
 * takes its number before the real free runs and after the real malloc returns (see
 * docs/design-shim.md, "Event rings").
 *
 * Merging needs every number below a limit to be in some ring: a thread sets `in_flight` before
 * it takes a number and clears it after publishing the event, and the merger, having read the
 * counter, waits until no ring is in flight. A thread is in flight for a dozen instructions and
 * never waits for anything meanwhile. Fork closes the rings (threads then wait before taking a
 * number), merges them and forks with none in flight. */
#include "rings.h"
#include "buffers.h"
#include "live.h"

#include <string.h>

#define MAX_RINGS 1024

_Alignas(64) _Atomic uint64_t lt_event_seq;
_Alignas(64) _Atomic int lt_rings_closed;

static struct lt_ring *_Atomic registry[MAX_RINGS];
static _Atomic int registry_high; /* slots at or above are all empty */
static struct lt_ring *free_rings;
static atomic_flag free_rings_lock = ATOMIC_FLAG_INIT;
static pthread_key_t ring_owner_key;
static int ring_owner_key_ready;

/* ---- claiming and giving back ---- */

static void spin_lock_free_rings(void) {
    while (atomic_flag_test_and_set_explicit(&free_rings_lock, memory_order_acquire)) sched_yield();
}

static void push_free_ring(struct lt_ring *r) {
    spin_lock_free_rings();
    r->next_free = free_rings;
    free_rings = r;
    atomic_flag_clear_explicit(&free_rings_lock, memory_order_release);
}

static struct lt_ring *pop_free_ring(void) {
    spin_lock_free_rings();
    struct lt_ring *r = free_rings;
    if (r) free_rings = r->next_free;
    atomic_flag_clear_explicit(&free_rings_lock, memory_order_release);
    return r;
}

static int register_ring(struct lt_ring *r) {
    for (int i = 0; i < MAX_RINGS; i++) {
        struct lt_ring *expected = NULL;
        if (atomic_load_explicit(&registry[i], memory_order_relaxed) == NULL &&
            atomic_compare_exchange_strong(&registry[i], &expected, r)) {
            r->slot = i;
            int high = atomic_load(&registry_high);
            while (high <= i && !atomic_compare_exchange_weak(&registry_high, &high, i + 1)) {
            }
            return 1;
        }
    }
    return 0;
}

/* The key's destructor, at thread exit: the ring's events go to the buffer first, then the
 * ring leaves the registry for the next thread. The thread's allocations after this (other
 * destructors, libc's own cleanup) take the locked path. */
static void give_back_ring(void *ring) {
    struct lt_ring *r = ring;
    int guard = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    lt_lock(&lt_buf.event_lock);
    lt_rings_drain_locked();
    atomic_store(&r->tail, atomic_load(&r->head)); /* anything left: tracing has stopped */
    atomic_store(&registry[r->slot], NULL);
    lt_unlock(&lt_buf.event_lock);
    lt_self.ring = NULL;
    lt_self.ring_retired = 1;
    push_free_ring(r);
    lt_self.in_hook = guard;
}

struct lt_ring *lt_ring_claim(void) {
    if (lt_self.ring_retired || !ring_owner_key_ready) return NULL;
    struct lt_ring *r = pop_free_ring();
    if (!r) r = lt_raw_mmap((sizeof *r + 4095) & ~(size_t)4095);
    if (!r) return NULL;
    atomic_store_explicit(&r->in_flight, 0, memory_order_relaxed);
    r->tid = lt_current_tid();
    r->fold.valid = 0;
    r->fold.released_from = 0;
    if (!register_ring(r)) {
        push_free_ring(r);
        lt_self.ring_retired = 1; /* a thousand threads hold rings: this one takes the locked path */
        return NULL;
    }
    /* pthread_setspecific may allocate (keys past the first 32): that is the tracer's own. */
    int guard = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    int failed = pthread_setspecific(ring_owner_key, r) != 0;
    lt_self.in_hook = guard;
    if (failed) {
        lt_lock(&lt_buf.event_lock);
        atomic_store(&registry[r->slot], NULL);
        lt_unlock(&lt_buf.event_lock);
        push_free_ring(r);
        lt_self.ring_retired = 1;
        return NULL;
    }
    lt_self.ring = r;
    return r;
}

void lt_rings_init(void) {
    lt_fold_init();
    ring_owner_key_ready = pthread_key_create(&ring_owner_key, give_back_ring) == 0;
}

/* ---- merging ---- */

/* A ring's own thread can find it in flight only from a signal handler that interrupted the
 * push (exit() there, say): that event is not published and never will be, so it is a gap, not
 * something to wait for. */
static void wait_not_in_flight(struct lt_ring *r) {
    if (r == lt_self.ring) return;
    for (int spin = 0; atomic_load(&r->in_flight); spin++) {
        if (spin < 200) __builtin_ia32_pause();
        else sched_yield(); /* its owner was preempted in the middle of an event */
    }
}

/* Encodes one event with its thread and time context in the active buffer, and counts it for
 * the END record. */
void lt_write_event_locked(const struct lt_event *e, uint64_t tid) {
    uint8_t *o = lt_reserve_locked(LT_EVENT_RECORD_MAX);
    if (!o) return;
    o = lt_encode_event(&lt_buf.buffers[lt_buf.active].chunk, &lt_buf.time_floor, o, e, tid);
    lt_live_event_locked(e, tid);
    switch (e->tag) {
    case TAG_ALLOC: lt_buf.count_allocs++; break;
    case TAG_FREE: lt_buf.count_frees++; break;
    case TAG_REALLOC: lt_buf.count_reallocs++; break;
    default: break;
    }
    lt_commit_locked(o);
}

void lt_append_event_locked(const struct lt_event *e, uint64_t tid) {
    if (!lt_fold_enabled()) {
        lt_write_event_locked(e, tid);
        return;
    }
    lt_fold_make_room_locked();
    if (atomic_load(&lt_phase) == PHASE_TRACING) lt_fold_take_locked(e, tid, NULL);
}

/* The ring holding the smallest-numbered event below `limit`, or NULL. */
static struct lt_ring *next_ring(struct lt_ring **rings, int count, uint64_t limit) {
    struct lt_ring *best = NULL;
    uint64_t best_seq = limit;
    for (int i = 0; i < count; i++) {
        struct lt_ring *r = rings[i];
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (tail == atomic_load_explicit(&r->head, memory_order_acquire)) continue;
        uint64_t seq = r->events[tail & (LT_RING_EVENTS - 1)].seq;
        if (seq < best_seq) {
            best_seq = seq;
            best = r;
        }
    }
    return best;
}

/* Merges every event numbered below the counter's value now; with `flush`, the events the fold
 * holds back are written too (io/fold.c). Writing may rotate buffers and so release the event
 * lock for a moment; room is made before an event is taken, and the event is written (or handed
 * to the fold) and its slot given back before the lock can go, so a merger that runs in such a
 * gap simply carries on in the same order. */
static void drain_locked(int flush) {
    int high = atomic_load(&registry_high);
    uint64_t limit = atomic_load(&lt_event_seq);
    struct lt_ring *rings[MAX_RINGS];
    int count = 0;
    for (int i = 0; i < high; i++) {
        struct lt_ring *r = atomic_load(&registry[i]);
        if (!r) continue;
        wait_not_in_flight(r);
        if (atomic_load_explicit(&r->tail, memory_order_relaxed) != atomic_load_explicit(&r->head, memory_order_acquire))
            rings[count++] = r;
    }
    int folding = lt_fold_enabled();
    while (count > 0) {
        if (folding) {
            lt_fold_make_room_locked();
            if (atomic_load_explicit(&lt_phase, memory_order_relaxed) != PHASE_TRACING) return;
        } else if (!lt_reserve_locked(LT_EVENT_RECORD_MAX)) {
            return; /* not tracing any more */
        }
        /* One ring (one thread allocating): its events are in order already. */
        struct lt_ring *r = count == 1 ? rings[0] : next_ring(rings, count, limit);
        if (!r) break;
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        if (tail == atomic_load_explicit(&r->head, memory_order_acquire)) break;
        const struct lt_event *e = &r->events[tail & (LT_RING_EVENTS - 1)];
        if (e->seq >= limit) break;
        /* Copied and given back before it is written: writing may let the lock go. */
        struct lt_event copy = *e;
        atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
        if (folding) lt_fold_take_locked(&copy, r->tid, &r->fold);
        else lt_write_event_locked(&copy, r->tid);
    }
    if (flush && folding) lt_fold_flush_locked();
}

void lt_rings_drain_locked(void) { drain_locked(1); }

void lt_rings_merge_locked(void) { drain_locked(0); }

/* Events the rings hold now: a bound on what a drain would write. */
static uint64_t rings_pending(void) {
    uint64_t pending = 0;
    int high = atomic_load(&registry_high);
    for (int i = 0; i < high; i++) {
        struct lt_ring *r = atomic_load(&registry[i]);
        if (r) pending += atomic_load(&r->head) - atomic_load(&r->tail);
    }
    return pending;
}

/* For a signal handler holding the event lock: merges the rings only if that cannot wait for
 * the writer (each buffer rotation must find a free buffer). Returns 0 when it did not. */
int lt_rings_drain_nowait_locked(void) {
    uint64_t bytes = (rings_pending() + lt_fold_held()) * LT_EVENT_RECORD_MAX + lt_buf.buffers[lt_buf.active].len +
                     LT_SIZED_RECORD_OVERHEAD + LT_FOLD_HEAD_MAX + 2048 * LT_FOLD_ENTRY_MAX;
    uint64_t rotations = bytes / LT_FLUSH_SIZE + 1;
    if (atomic_load(&lt_phase) != PHASE_TRACING || (uint64_t)lt_buf.free_len < rotations + 1) return 0;
    lt_rings_drain_locked();
    return 1;
}

/* A full ring: merge everything (which empties this ring too). */
void lt_ring_make_room(struct lt_ring *r) {
    lt_lock(&lt_buf.event_lock);
    if (atomic_load(&r->head) - atomic_load(&r->tail) >= LT_RING_EVENTS) drain_locked(0);
    lt_unlock(&lt_buf.event_lock);
    /* Still full only when tracing stopped while we waited: drop the events, the trace is over. */
    if (atomic_load(&r->head) - atomic_load(&r->tail) >= LT_RING_EVENTS)
        atomic_store(&r->tail, atomic_load(&r->head));
}

void lt_rings_wait_open(void) {
    while (atomic_load(&lt_rings_closed)) sched_yield();
}

/* ---- fork ---- */

/* No thread takes a number until lt_rings_open; on return none is in flight. */
void lt_rings_close(void) {
    atomic_fetch_add(&lt_rings_closed, 1);
    int high = atomic_load(&registry_high);
    for (int i = 0; i < high; i++) {
        struct lt_ring *r = atomic_load(&registry[i]);
        if (r) wait_not_in_flight(r);
    }
}

void lt_rings_open(void) { atomic_fetch_sub(&lt_rings_closed, 1); }

/* In the child: the other threads are gone; their rings (merged before the fork) are free. */
void lt_rings_after_fork(void) {
    atomic_flag_clear(&free_rings_lock);
    int high = atomic_load(&registry_high);
    for (int i = 0; i < high; i++) {
        struct lt_ring *r = atomic_load(&registry[i]);
        if (!r || r == lt_self.ring) continue;
        atomic_store(&registry[i], NULL);
        atomic_store(&r->tail, atomic_load(&r->head));
        push_free_ring(r);
    }
    if (lt_self.ring) {
        atomic_store(&lt_self.ring->tail, atomic_load(&lt_self.ring->head));
        lt_self.ring->tid = lt_current_tid();
        lt_self.ring->fold.valid = 0;
        lt_self.ring->fold.released_from = 0;
    }
    lt_fold_after_fork();
    atomic_store(&lt_rings_closed, 0);
}
