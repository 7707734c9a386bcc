/* The append buffers: rotation, the slow paths of appending, the queue the writer empties
 * (io/buffers.h). */
#include "buffers.h"
#include "chunks.h"
#include "writer.h"

#include <string.h>


struct lt_buffers lt_buf = {
    .file_lock = PTHREAD_MUTEX_INITIALIZER,
};

static void buffer_reset(struct lt_buffer *b) {
    b->len = 0;
    b->chunk = (struct lt_chunk_state){0, 0, 0, 0};
}

void lt_buffers_init(void) {
    lt_buf.free_len = 0;
    lt_buf.queue_head = lt_buf.queue_len = 0;
    for (int i = 0; i < LT_BUFFER_COUNT; i++) {
        struct lt_buffer *b = &lt_buf.buffers[i];
        if (!b->data) {
            b->data = lt_raw_mmap(LT_BUFFER_CAPACITY);
            b->cap = b->data ? LT_BUFFER_CAPACITY : 0;
        }
        buffer_reset(b);
        if (i > 0) lt_buf.free_list[lt_buf.free_len++] = i;
    }
    lt_buf.active = 0;
}

/* Moves the active buffer to the write queue and takes a free one. When every buffer is
 * queued, a hook waits for the writer (back-pressure rather than unbounded memory); if there
 * is no writer thread, or the caller is the writer itself (its memory samples, module
 * snapshots and marks are records too, and once waited here for buffers only it could free:
 * two threads allocating flat out on two cores starved it until all eight were queued), or the
 * caller holds the file lock the writer needs (a flush merging the event rings), or the
 * caller is inside the program's own dl_iterate_phdr (the writer's module check waits for the
 * loader's list lock that this thread holds: seen as a hang, hazard case 3, 2 runs in 30), the
 * caller writes the queue itself. */
static void rotate_locked(int may_wait) {
    while (lt_buf.free_len == 0) {
        if (!may_wait || atomic_load(&lt_phase) != PHASE_TRACING) return;
        if (lt_writer_running() && !lt_self.is_writer && !lt_self.holds_file_lock && !lt_self.loader_locked) {
            int seen = atomic_load(&lt_buf.freed_seq);
            lt_signal_change(&lt_buf.queued_seq);
            lt_wait_change(&lt_buf.event_lock, &lt_buf.freed_seq, seen, NULL);
        } else {
            /* The writer would need the file lock: a flush that holds it writes the queue. */
            int held = lt_self.holds_file_lock;
            lt_unlock(&lt_buf.event_lock);
            if (!held) lt_file_lock();
            lt_buffers_write_queued(0);
            if (!held) lt_file_unlock();
            lt_lock(&lt_buf.event_lock);
        }
    }
    if (lt_buf.buffers[lt_buf.active].len == 0) return;
    lt_buf.queue[(lt_buf.queue_head + lt_buf.queue_len) % LT_BUFFER_COUNT] = lt_buf.active;
    lt_buf.queue_len++;
    lt_buf.active = lt_buf.free_list[--lt_buf.free_len];
    buffer_reset(&lt_buf.buffers[lt_buf.active]);
    lt_signal_change(&lt_buf.queued_seq);
}

/* The slow paths of lt_reserve_locked and lt_commit_locked (io/buffers.h). */
uint8_t *lt_reserve_slow_locked(size_t need) {
    if (atomic_load_explicit(&lt_phase, memory_order_relaxed) != PHASE_TRACING) return NULL;
    rotate_locked(1);
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    if (b->len + need > b->cap) return NULL;
    return b->data + b->len;
}

void lt_buffer_full_locked(void) { rotate_locked(1); }

/* Emits THREAD and TIME when they changed since the last event in this chunk. */
void lt_context_slow_locked(uint64_t tid, uint64_t now) {
    uint8_t *p = lt_reserve_locked(24);
    if (!p) return;
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    b->len = (size_t)(lt_put_context(&b->chunk, &lt_buf.time_floor, p, tid, now) - b->data);
}

static void append_sized_locked(uint8_t tag, const uint8_t *body, size_t len) {
    uint8_t *p = lt_reserve_locked(len + LT_SIZED_RECORD_OVERHEAD);
    if (!p) return;
    lt_commit_locked(lt_encode_sized(p, tag, body, len));
}

void lt_append_record_locked(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context) {
    if (context == LT_WITH_CONTEXT) lt_event_context_locked(lt_current_tid());
    append_sized_locked(tag, body, len);
}

void lt_append_record(uint8_t tag, const uint8_t *body, size_t len, enum lt_context context) {
    lt_lock_events();
    lt_append_record_locked(tag, body, len, context);
    lt_unlock(&lt_buf.event_lock);
}

int lt_append_record_nowait_locked(uint8_t tag, const uint8_t *body, size_t len) {
    struct lt_buffer *b = &lt_buf.buffers[lt_buf.active];
    if (atomic_load(&lt_phase) != PHASE_TRACING || b->len + LT_CONTEXT_MAX + LT_SIZED_RECORD_OVERHEAD + len > b->cap)
        return 0;
    lt_event_context_locked(lt_current_tid());
    b->len = (size_t)(lt_encode_sized(b->data + b->len, tag, body, len) - b->data);
    return 1;
}

/* Only the file lock's holder takes buffers off the queue, so chunks reach the file in the
 * order they were filled. */
void lt_buffers_write_queued(int include_active) {
    lt_lock(&lt_buf.event_lock);
    for (;;) {
        if (include_active && lt_buf.queue_len == 0 && lt_buf.buffers[lt_buf.active].len > 0 && lt_buf.free_len > 0) {
            rotate_locked(0);
            include_active = 0;
        }
        if (lt_buf.queue_len == 0) break;
        int pending[LT_BUFFER_COUNT], count = 0;
        while (lt_buf.queue_len > 0) {
            pending[count++] = lt_buf.queue[lt_buf.queue_head];
            lt_buf.queue_head = (lt_buf.queue_head + 1) % LT_BUFFER_COUNT;
            lt_buf.queue_len--;
        }
        lt_unlock(&lt_buf.event_lock);
        for (int i = 0; i < count; i++) lt_write_chunk(&lt_buf.buffers[pending[i]]);
        lt_lock(&lt_buf.event_lock);
        for (int i = 0; i < count; i++) {
            buffer_reset(&lt_buf.buffers[pending[i]]);
            lt_buf.free_list[lt_buf.free_len++] = pending[i];
        }
        lt_signal_change(&lt_buf.freed_seq);
    }
    lt_unlock(&lt_buf.event_lock);
}


void lt_buffers_after_fork(void) {
    atomic_store(&lt_buf.event_lock.state, 0);
    lt_locks_taken = 0; /* the forking thread held it through the fork; the child's is new */
    pthread_mutex_init(&lt_buf.file_lock, NULL);
    lt_buf.count_allocs = lt_buf.count_frees = lt_buf.count_reallocs = lt_buf.count_mappings = 0;
    lt_buf.count_stacks = lt_buf.count_chunks = 0;
    lt_buf.time_floor = 0; /* the child's clock starts over with its trace */
}
