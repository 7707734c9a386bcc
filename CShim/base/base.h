/* The layer under every other: what the hooks, core, io and format layers all use and none of
 * them owns. The per-thread state and guard, the tracer's phase, the thread id, the tracer's own
 * memory, the one-line warning, and the event lock's implementation (lock.h).
 *
 * Rules every file of the library follows (docs/design-shim.md):
 *  - nothing reachable from a hook calls the process's allocator, stdio or the dynamic loader;
 *    the tracer's own memory comes from lt_arena_alloc and lt_raw_mmap (raw mmap system calls);
 *  - every hook sets the thread's guard before calling the real function, so calls the
 *    allocator or libunwind make from inside a hook pass straight through;
 *  - the event lock is never held while unwinding or while calling into the loader. */
#ifndef LEAKTRACE_BASE_H
#define LEAKTRACE_BASE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "lock.h"

#define LT_LIKELY(x) __builtin_expect(!!(x), 1)
#define LT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LT_HIDDEN __attribute__((visibility("hidden")))
#define LT_EXPORT __attribute__((visibility("default")))

/* The most frames a stack can have (LEAKTRACE_DEPTH is at most this). */
#define LT_MAX_DEPTH 256

/* ---- the tracer's phase ---- */
enum {
    PHASE_OFF = 0,      /* not initialised yet: hooks pass through */
    PHASE_TRACING = 1,  /* recording */
    PHASE_STOPPED = 2,  /* gave up (write error, setuid, ...) or finished: pass through */
};
extern _Atomic int lt_phase;

/* ---- configuration: read once from the environment at start (core/init.c), then read-only ---- */
struct lt_config {
    char output_pattern[1024];
    int depth;           /* frames recorded per stack */
    int sample_ms;       /* statm sampling interval */
    int flush_ms;        /* at most this long between flushes */
    int zstd_level;      /* 0: store chunks raw */
    int verbose;
    int mark_signal;     /* 0: off */
    int unwind;          /* LEAKTRACE_UNWIND: one of LT_UNWIND_* */
    int events_folded;   /* LEAKTRACE_EVENTS: 1 (default) folds short-lived blocks, 0 ("all") writes every event */
    int fold_window;     /* LEAKTRACE_FOLD_WINDOW: allocator events held back to find short-lived blocks */
    int reachability;    /* LEAKTRACE_REACHABILITY: 1 (default) keeps the live set and scans at exit */
    int freeres;         /* LEAKTRACE_FREERES: 1 (default) calls the runtimes' cleanup before the scan */
};

/* How stacks are captured (LEAKTRACE_UNWIND). */
enum {
    LT_UNWIND_LIBUNWIND, /* unw_backtrace for every capture: the reference */
    LT_UNWIND_CACHED,    /* default: the validated cache, then the walker, then libunwind */
    LT_UNWIND_VERIFY,    /* as cached, every capture checked against libunwind's step-by-step walk */
    LT_UNWIND_WALK,      /* the walker without the cache (to measure each on its own) */
};

extern struct lt_config lt_config;

/* ---- per-thread state ---- */

/* The guard's values: inside a hook recording a program call (a nested allocator call then is
 * either the allocator's or libunwind's own, or a signal handler's, and is counted as
 * untraced), or running the tracer's own work (start-up, the writer thread, fork and exit
 * handling), whose allocations are simply not the program's. */
#define LT_IN_HOOK 1
#define LT_IN_TRACER 2

struct lt_ring;

/* One block of initial-exec TLS for all the tracer's per-thread state: a preloaded library's
 * static TLS is carved out of every thread's stack, so it stays small. */
struct lt_thread {
    int in_hook;                 /* guard: LT_IN_HOOK or LT_IN_TRACER while set */
    unsigned fork_generation;    /* tid below is valid for this generation */
    uint64_t tid;
    /* Set while the program's own dl_iterate_phdr runs on this thread (the loader's list lock
     * is held): libunwind must not be entered then (see the dl_iterate_phdr hook). */
    int loader_locked;
    int is_writer;               /* the tracer's writer thread (io/writer.c) */
    int holds_file_lock;         /* a flush holds the file lock: it writes full buffers itself */
    struct lt_ring *ring;        /* this thread's event ring, claimed at its first event */
    int ring_retired;            /* the ring was given back at thread exit, or none was had */
    int fatal_signal_deferred;   /* a fatal signal waited for this thread to let a lock go */
};

extern __thread struct lt_thread lt_self __attribute__((tls_model("initial-exec")));

/* Calls that reached a hook while its thread was already inside one (END's `untraced`). */
extern _Atomic uint64_t lt_count_untraced;

static inline int lt_hook_enter(void) {
    /* Returns 1 when the caller may record. A nested call (from the allocator, libunwind or a
     * signal handler that interrupted a hook) passes straight through. */
    struct lt_thread *t = &lt_self;
    if (LT_UNLIKELY(t->in_hook)) {
        if (t->in_hook == LT_IN_HOOK && atomic_load_explicit(&lt_phase, memory_order_relaxed) == PHASE_TRACING)
            atomic_fetch_add_explicit(&lt_count_untraced, 1, memory_order_relaxed);
        return 0;
    }
    if (LT_UNLIKELY(atomic_load_explicit(&lt_phase, memory_order_acquire) != PHASE_TRACING))
        return 0;
    t->in_hook = LT_IN_HOOK;
    return 1;
}

static inline void lt_hook_leave(void) { lt_self.in_hook = 0; }

/* ---- base/base.c ---- */

/* The calling thread's kernel id, cached per thread and per fork generation. */
LT_HIDDEN uint64_t lt_current_tid(void);
/* In a forked child: every thread's cached id is stale (and the counter restarts). */
LT_HIDDEN void lt_base_after_fork(void);
/* One line on stderr, "leaktrace: msg1 msg2: msg3" (msg2 and msg3 may be NULL), written with
 * write(2): stdio may be locked or closed. */
LT_HIDDEN void lt_warn(const char *msg1, const char *msg2, const char *msg3);

/* ---- base/arena.c: the tracer's own memory ---- */

/* Zeroed memory kept for the life of the process (tables); never freed. */
LT_HIDDEN void *lt_arena_alloc(size_t size);
/* A fresh mapping of `size` bytes (a multiple of the page size), or NULL. */
LT_HIDDEN void *lt_raw_mmap(size_t size);
LT_HIDDEN void lt_arena_free_pages(void *p, size_t size);
/* The mappings lt_raw_mmap made (start 0: not written yet; size 0: unmapped since).
 * `complete` is 0 when there were more than the list holds. */
struct lt_own_mapping {
    _Atomic uint64_t start;
    uint64_t size;
};
LT_HIDDEN const struct lt_own_mapping *lt_own_mappings(uint64_t *count, int *complete);

#endif
