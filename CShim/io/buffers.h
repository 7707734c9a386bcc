/* The append buffers (io/buffers.c): every record reaches the one active buffer under the
 * event lock (allocator events by way of their thread's ring, io/rings.h), so the file order is
 * the order the program's calls happened. A full buffer is queued for the writer thread
 * (io/writer.c), which writes it as one chunk (io/chunks.c).
 *
 * Lock order: the file lock, then the event lock. The allocator hooks take only the event lock
 * (and only when their ring is full or they have none); the exec, exit and fork paths take the
 * file lock first. */
#ifndef LEAKTRACE_BUFFERS_H
#define LEAKTRACE_BUFFERS_H

#include "../base/base.h"
#include "../format/records.h"
#include "rings.h"

/* Each buffer has a cache line of its own: with several threads recording, the event lock's
 * line, the active buffer's line and the line being written move between cores on every event;
 * nothing else should ride along. */
struct __attribute__((aligned(64))) lt_buffer {
    uint8_t *data;
    size_t len;
    size_t cap;
    struct lt_chunk_state chunk; /* reset when the buffer is emptied */
};

#define LT_BUFFER_COUNT 8
#define LT_BUFFER_CAPACITY (1u << 20)
/* A buffer this full is queued for the writer. */
#define LT_FLUSH_SIZE (256u << 10)

struct lt_buffers {
    /* The event lock orders every record: it guards the active buffer, the stack tables'
     * insertions and the counters, which share its cache line (see struct lt_buffer). Held
     * only for encoding, never while unwinding. */
    _Alignas(64) struct lt_lock event_lock;
    int active;                   /* index of the buffer records are appended to */
    /* counters for the END record (under the event lock) */
    uint64_t count_allocs, count_frees, count_reallocs, count_mappings, count_stacks, count_chunks;
    uint64_t time_floor;          /* latest TIME written: TIME never goes back (event lock) */

    _Alignas(64) _Atomic int queued_seq; /* bumped when a buffer is queued: wakes the writer */
    _Atomic int freed_seq;        /* bumped when the writer returns buffers: wakes waiting hooks */
    /* The file lock serialises writes to the trace file; taken before the event lock. */
    pthread_mutex_t file_lock;

    struct lt_buffer buffers[LT_BUFFER_COUNT];
    int queue[LT_BUFFER_COUNT];   /* filled buffers in write order */
    int queue_head, queue_len;
    int free_list[LT_BUFFER_COUNT];
    int free_len;
};

extern struct lt_buffers lt_buf;

/* The file lock, taken and let go by a thread that records that it holds it, from before it
 * tries to after it let go (a fatal signal arriving meanwhile waits until it is let go:
 * core/fatal.c). */
static inline void lt_file_lock(void) {
    lt_self.holds_file_lock = 1;
    pthread_mutex_lock(&lt_buf.file_lock);
}

static inline void lt_file_unlock(void) {
    pthread_mutex_unlock(&lt_buf.file_lock);
    lt_self.holds_file_lock = 0;
    if (LT_UNLIKELY(lt_deferred_signals != 0)) lt_deliver_deferred_signal();
}

/* Maps the buffers (once) and empties them all. */
LT_HIDDEN void lt_buffers_init(void);
/* In a forked child: the locks re-created, the counters zeroed. */
LT_HIDDEN void lt_buffers_after_fork(void);
/* Writes every queued buffer in queue order, and the active one too when `include_active`.
 * Called with the file lock held and the event lock not held. */
LT_HIDDEN void lt_buffers_write_queued(int include_active);

LT_HIDDEN uint8_t *lt_reserve_slow_locked(size_t need);
LT_HIDDEN void lt_buffer_full_locked(void);
LT_HIDDEN void lt_context_slow_locked(uint64_t tid, uint64_t now);

/* Whether a sized record carries THREAD and TIME context. */
enum lt_context { LT_NO_CONTEXT = 0, LT_WITH_CONTEXT = 1 };
/* Appends a sized record (body from a format/records.h encoder) written directly: takes the
 * event lock, merges the rings' older events first, writes the context if asked, unlocks.
 * Nothing is written when not tracing. */
LT_HIDDEN void lt_append_record(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context);
/* The same with the event lock already held. */
LT_HIDDEN void lt_append_record_locked(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context);
/* For a signal handler: appends a sized record with its context only if it fits in the active
 * buffer as it is (never rotates buffers, never waits). Returns 0 when it did not fit. */
LT_HIDDEN int lt_append_record_nowait_locked(uint8_t tag, const uint8_t *body, size_t len);

/* ---- appending in place (the event lock is held) ---- */

/* Room for `need` bytes in the active buffer, or NULL when not tracing. */
static inline uint8_t *lt_reserve_locked(size_t need) {
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    if (LT_LIKELY(b->len + need <= b->cap) &&
        LT_LIKELY(atomic_load_explicit(&lt_phase, memory_order_relaxed) == PHASE_TRACING))
        return b->data + b->len;
    return lt_reserve_slow_locked(need);
}

static inline void lt_commit_locked(uint8_t *end) {
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    b->len = (size_t)(end - b->data);
    if (LT_UNLIKELY(b->len >= LT_FLUSH_SIZE)) lt_buffer_full_locked();
}

/* Takes the event lock for a record written directly (a mapping, a mark, modules, a sample,
 * END): the events the rings hold are older, so they go first. */
static inline void lt_lock_events(void) {
    lt_lock(&lt_buf.event_lock);
    lt_rings_drain_locked();
}

static inline void lt_unlock_events(void) { lt_unlock(&lt_buf.event_lock); }

/* Emits THREAD and TIME records when the thread or the clock changed since the chunk's last
 * event. */
static inline void lt_event_context_locked(uint64_t tid) {
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    uint64_t now = atomic_load_explicit(&lt_tick_us, memory_order_relaxed);
    if (LT_LIKELY(b->chunk.cur_tid == tid && b->chunk.has_time && b->chunk.cur_time == now)) return;
    lt_context_slow_locked(tid, now);
}

#endif
