/* The tracer's shared state (struct lt_state) and the declarations of core/ and io/. The rules
 * every file follows are in base/base.h. */
#ifndef LEAKTRACE_SHIM_H
#define LEAKTRACE_SHIM_H

#include "../base/base.h"
#include "real.h"
#include "../format/records.h"

/* ---- configuration (read once from the environment) ---- */
struct lt_config {
    char output_pattern[1024];
    int depth;           /* frames recorded per stack */
    int sample_ms;       /* statm sampling interval */
    int flush_ms;        /* at most this long between flushes */
    int zstd_level;      /* 0: store chunks raw */
    int verbose;
    int mark_signal;     /* 0: off */
    int unwind;          /* LEAKTRACE_UNWIND: one of LT_UNWIND_* */
};

/* How stacks are captured (LEAKTRACE_UNWIND). */
enum {
    LT_UNWIND_LIBUNWIND, /* unw_backtrace for every capture: the reference */
    LT_UNWIND_CACHED,    /* default: the validated cache, then the walker, then libunwind */
    LT_UNWIND_VERIFY,    /* as cached, every capture checked against unw_backtrace */
    LT_UNWIND_WALK,      /* the walker without the cache (to measure each on its own) */
};

/* ---- an append buffer that becomes one chunk ---- */
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

/* ---- per-thread event rings (io/rings.c) ---- */
#define LT_RING_EVENTS 2048   /* a power of two */

struct lt_ring {
    _Alignas(64) _Atomic uint64_t head;   /* events published (the owner writes) */
    _Atomic int in_flight;                /* the owner holds a number not yet published */
    _Alignas(64) _Atomic uint64_t tail;   /* events merged (under the event lock) */
    uint64_t tid;                         /* the owner's */
    int slot;                             /* index in the registry */
    struct lt_ring *next_free;
    _Alignas(64) struct lt_event events[LT_RING_EVENTS];
};

/* ---- the whole tracer state ---- */
struct lt_state {
    struct lt_config config;

    /* The event lock orders every record: it guards the active buffer, the stack tables'
     * insertions and the counters, which share its cache line (see struct lt_buffer). Held
     * only for encoding, never while unwinding. */
    _Alignas(64) struct lt_lock event_lock;
    int active;                   /* index of the buffer hooks append to */
    /* counters for the END record (under the event lock) */
    uint64_t count_allocs, count_frees, count_reallocs, count_mappings, count_stacks, count_chunks;

    _Alignas(64) _Atomic int queued_seq;       /* bumped when a buffer is queued: wakes the writer */
    _Atomic int freed_seq;        /* bumped when the writer returns buffers: wakes waiting hooks */
    /* The file lock serialises writes to the trace file; taken before the event lock. */
    pthread_mutex_t file_lock;

    struct lt_buffer buffers[LT_BUFFER_COUNT];
    int queue[LT_BUFFER_COUNT];   /* filled buffers in write order */
    int queue_head, queue_len;
    int free_list[LT_BUFFER_COUNT];
    int free_len;

    /* output */
    char output_path[4096];
    int fd;
    dev_t file_dev;
    ino_t file_ino;
    uint64_t file_offset;         /* bytes written so far */
    int file_closed;

    /* identity */
    pid_t pid;
    uint64_t start_monotonic_us;
    char program_path[4096];
    char program_name[256];
    int allocator_is_glibc;
    char allocator_name[512];

    /* our own text segment, to drop the tracer's frames from stacks */
    uintptr_t self_text_start, self_text_end;
    /* libunwind's text segment: see the pipe2 hook */
    uintptr_t unwind_text_start, unwind_text_end;
    /* Code whose mmap/munmap/mremap calls are not the program's: libunwind's, and a non-glibc
     * allocator's (see lt_is_internal_mapping_caller). Filled at start, read-only afterwards. */
    struct { uintptr_t start, end; } internal_mappers[4];
    int internal_mapper_count;

    /* Numbers allocator events (io/rings.c); its own cache line, the one every hook touches. */
    _Alignas(64) _Atomic uint64_t event_seq;
    /* Nonzero while a fork merges the rings: hooks wait before taking a number. */
    _Alignas(64) _Atomic int rings_closed;
    uint64_t time_floor;          /* latest TIME written: TIME never goes back (event lock) */

    /* module map change detection */
    unsigned long long modules_adds, modules_subs;
    uint64_t modules_generation;

    /* Microseconds since start, advanced by the writer thread every tick: hooks read this
     * instead of calling clock_gettime on every event. */
    _Alignas(64) _Atomic uint64_t now_us;
    /* Threads inside libunwind right now, and how many forks are waiting for them to leave:
     * libunwind's global cache lock must not be held when the process forks (lt_unwind_enter). */
    _Alignas(64) _Atomic int unwinders;
    _Atomic int fork_pending;

    pthread_t writer_thread;
    int writer_running;
    _Atomic int writer_stop;
    int warned_write;
};

extern struct lt_state lt;

/* ---- core/init.c ---- */
LT_HIDDEN void lt_finish(const char *reason);

/* ---- core/stacks.c ---- */
struct cached_stack;
/* Where a hook was called from: its CFA (the caller's stack pointer), its return address and
 * the caller's rbp, which the hook's prologue saved where __builtin_frame_address(0) points
 * (using the builtin makes the compiler give the hook a frame pointer). */
#define LT_CALL_SITE                                                                        \
    ((uintptr_t)__builtin_dwarf_cfa()), ((uintptr_t)__builtin_return_address(0)),           \
        (*(const uintptr_t *)__builtin_frame_address(0))
LT_HIDDEN int lt_capture_stack(uintptr_t *frames, int max);
LT_HIDDEN int lt_capture_stack_at(uintptr_t cfa, uintptr_t ip0, uintptr_t bp, uintptr_t *frames, int max,
                                  uint32_t *cached_id, struct cached_stack **fill);
/* What the captures did so far, for LEAKTRACE_VERBOSE and LEAKTRACE_UNWIND=verify. */
struct lt_capture_summary {
    uint64_t hits;              /* stacks found in place in the thread's cache */
    uint64_t walks;             /* stacks walked with CFI rules */
    uint64_t fills_skipped;     /* walks not stored: their cache set kept missing */
    uint64_t fallbacks;         /* walks that met a frame only libunwind can step */
    uint64_t backtraces;        /* unw_backtrace calls (fallbacks, libunwind mode, mappings) */
    uint64_t rules_learned, rules_unsupported;
};
LT_HIDDEN void lt_capture_summary(struct lt_capture_summary *s);
LT_HIDDEN void lt_stack_cache_store(struct cached_stack *e, uint32_t stack_id);
/* After dlclose: forget every unwind rule learned for code that may now be gone. */
LT_HIDDEN void lt_stacks_forget_code(void);
LT_HIDDEN uint32_t lt_stack_id(const uintptr_t *frames, int n);
LT_HIDDEN void lt_stacks_reset(void);
LT_HIDDEN void lt_stacks_init(void);

/* ---- core/modules.c ---- */
LT_HIDDEN void lt_modules_snapshot(int force);
LT_HIDDEN void lt_modules_snapshot_unless_busy(void);
LT_HIDDEN void lt_find_self_text(void);
LT_HIDDEN int lt_move_fd_high(int fd);
LT_HIDDEN void lt_add_internal_mapper(const void *address);

/* True when a mapping call comes from code whose mappings are not the program's own:
 *  - libunwind, which maps its per-thread caches from inside our hooks and unmaps them from a
 *    thread-exit destructor, outside any hook;
 *  - an allocator other than glibc's (jemalloc, mimalloc, ...), which maps while holding its
 *    own locks. Unwinding there walks the loader's list (dl_iterate_phdr), and a thread in
 *    dlopen/dlclose holds the loader's lock while it calls that allocator: a deadlock. Its
 *    mappings are its heap, shown as ALLOC records, as glibc's internal ones are.
 * Such calls pass straight through, unrecorded. */
static inline int lt_is_internal_mapping_caller(uintptr_t caller) {
    for (int i = 0; i < lt.internal_mapper_count; i++)
        if (caller >= lt.internal_mappers[i].start && caller < lt.internal_mappers[i].end) return 1;
    return 0;
}

/* ---- core/marks.c ---- */
/* Installs the LEAKTRACE_MARK_SIGNAL handler, unless the program handles that signal. */
LT_HIDDEN void lt_install_mark_signal(void);
/* Writes the marks asked for by signal that their handler could not write itself. */
LT_HIDDEN void lt_marks_write_pending(void);

/* ---- core/chunkpath.c ---- */
LT_HIDDEN void lt_detect_allocator(void);
static inline int lt_chunk_path(const void *p) {
    /* glibc keeps the chunk's size word just before the user pointer; its low bits say
     * whether the chunk was mmapped on its own (IS_MMAPPED, 0x2) or belongs to a thread
     * arena (NON_MAIN_ARENA, 0x4). Only meaningful when the allocator is glibc's. */
    if (!lt.allocator_is_glibc) return PATH_UNKNOWN;
    size_t word = ((const size_t *)p)[-1];
    if (word & 0x2) return PATH_MMAP;
    if (word & 0x4) return PATH_THREAD_ARENA;
    return PATH_HEAP;
}

/* ---- io/writer.c ---- */
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
LT_HIDDEN int lt_open_output(const char *parent_trace, uint64_t parent_offset);
LT_HIDDEN void lt_buffers_init(void);
/* Starts the writer thread; `tick` runs on it every tick, the one way it calls up. */
LT_HIDDEN void lt_writer_start(void (*tick)(void));
LT_HIDDEN void lt_flush_all(int final_end);
LT_HIDDEN void lt_flush_for_fork(void);
LT_HIDDEN uint64_t lt_now_us(void);
LT_HIDDEN void lt_emit_note(int level, const char *text);
LT_HIDDEN void lt_emit_thread_name(uint64_t tid, const char *name, size_t len);

/* ---- io/rings.c ---- */
LT_HIDDEN struct lt_ring *lt_ring_claim(void);
LT_HIDDEN void lt_ring_make_room(struct lt_ring *r);
LT_HIDDEN void lt_rings_wait_open(void);
LT_HIDDEN void lt_rings_drain_locked(void);
LT_HIDDEN int lt_rings_drain_nowait_locked(void);
LT_HIDDEN void lt_append_event_locked(const struct lt_event *e, uint64_t tid);
LT_HIDDEN void lt_rings_init(void);
LT_HIDDEN void lt_rings_close(void);
LT_HIDDEN void lt_rings_open(void);
LT_HIDDEN void lt_rings_after_fork(void);

/* ---- hooks: recorders used by several hook files ---- */
LT_HIDDEN void lt_record_alloc(int fn, void *p, size_t size, uintptr_t cfa, uintptr_t ip0, uintptr_t bp);
LT_HIDDEN void lt_record_free(void *p);

/* True in a child that shares or copies our state without having gone through the fork
 * handlers: a vfork child (shell PATH searches: dash execs in a vfork child until one exec
 * succeeds) or a raw clone. Its pid differs from the traced one; anything it wrote would land
 * in the parent's trace. getpid is a real system call, so this is only for rare paths (exec,
 * exit). */
static inline int lt_in_foreign_child(void) { return getpid() != lt.pid; }

/* Brackets every call into libunwind, and every module snapshot. Debian's libunwind keeps one
 * process-wide cache whose lock it holds while unwinding, and a snapshot holds the snapshot lock
 * and the loader's list lock; a child forked while another thread held one of them would wait
 * for it forever (hazard 4). The fork prepare handler counts itself in
 * fork_pending and waits until no thread is inside libunwind; a thread about to enter backs off until the fork is
 * done. Both sides use sequentially consistent atomics: either the entering thread sees the
 * pending fork, or the forking thread sees the entering thread's count. */
static inline void lt_unwind_enter(void) {
    for (;;) {
        atomic_fetch_add(&lt.unwinders, 1);
        if (LT_LIKELY(!atomic_load(&lt.fork_pending))) return;
        atomic_fetch_sub(&lt.unwinders, 1);
        while (atomic_load(&lt.fork_pending)) sched_yield();
    }
}

static inline void lt_unwind_leave(void) { atomic_fetch_sub(&lt.unwinders, 1); }

/* ---- appending records (the event lock is held) ---- */

#define LT_FLUSH_SIZE (256u << 10)

/* Room for `need` bytes in the active buffer, or NULL when not tracing. */
static inline uint8_t *lt_reserve_locked(size_t need) {
    struct lt_buffer *b = &lt.buffers[lt.active];
    if (LT_LIKELY(b->len + need <= b->cap) &&
        LT_LIKELY(atomic_load_explicit(&lt_phase, memory_order_relaxed) == PHASE_TRACING))
        return b->data + b->len;
    return lt_reserve_slow_locked(need);
}

static inline void lt_commit_locked(uint8_t *end) {
    struct lt_buffer *b = &lt.buffers[lt.active];
    b->len = (size_t)(end - b->data);
    if (LT_UNLIKELY(b->len >= LT_FLUSH_SIZE)) lt_buffer_full_locked();
}

/* Takes the event lock for a record written directly (a mapping, a mark, modules, a sample,
 * END): the events the rings hold are older, so they go first. */
static inline void lt_lock_events(void) {
    lt_lock(&lt.event_lock);
    lt_rings_drain_locked();
}

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
        e->seq = atomic_fetch_add(&lt.event_seq, 1);
        if (LT_LIKELY(!atomic_load_explicit(&lt.rings_closed, memory_order_relaxed))) break;
        atomic_store_explicit(&r->in_flight, 0, memory_order_release);
        lt_rings_wait_open();
    }
    e->time_us = atomic_load_explicit(&lt.now_us, memory_order_relaxed);
    r->events[head & (LT_RING_EVENTS - 1)] = *e;
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    atomic_store_explicit(&r->in_flight, 0, memory_order_release);
    return 1;
}

/* Emits THREAD and TIME records when the thread or the clock changed since the chunk's last
 * event. */
static inline void lt_event_context_locked(uint64_t tid) {
    struct lt_buffer *b = &lt.buffers[lt.active];
    uint64_t now = atomic_load_explicit(&lt.now_us, memory_order_relaxed);
    if (LT_LIKELY(b->chunk.cur_tid == tid && b->chunk.has_time && b->chunk.cur_time == now)) return;
    lt_context_slow_locked(tid, now);
}
#endif
