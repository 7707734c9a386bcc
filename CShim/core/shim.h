/* The tracer's shared state (struct lt_state) and the declarations of core/ and io/. The rules
 * every file follows are in base/base.h. */
#ifndef LEAKTRACE_SHIM_H
#define LEAKTRACE_SHIM_H

#include "../base/base.h"
#include "real.h"
#include "../format/records.h"
#include "../io/buffers.h"
#include "../io/file.h"
#include "../io/rings.h"
#include "../io/writer.h"

/* ---- core's state ---- */
struct lt_state {
    /* identity */
    pid_t pid;
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

    /* module map change detection */
    unsigned long long modules_adds, modules_subs;
    uint64_t modules_generation;

    /* Threads inside libunwind right now, and how many forks are waiting for them to leave:
     * libunwind's global cache lock must not be held when the process forks (lt_unwind_enter). */
    _Alignas(64) _Atomic int unwinders;
    _Atomic int fork_pending;
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
LT_HIDDEN void lt_stacks_reset(void);
LT_HIDDEN void lt_stacks_init(void);

/* ---- core/intern.c ---- */
/* The id of a captured stack's leaf node; a stack never seen is interned under the event lock,
 * which writes its STACK records at once. Called without the event lock. */
LT_HIDDEN uint32_t lt_stack_id(const uintptr_t *frames, int n);
/* Empties the tables (at start and in a forked child, whose trace must stand alone). */
LT_HIDDEN void lt_intern_reset(void);

/* ---- core/modules.c ---- */
LT_HIDDEN void lt_modules_snapshot(int force);
LT_HIDDEN void lt_modules_snapshot_unless_busy(void);
/* In a forked child: its trace starts with a snapshot of its own. */
LT_HIDDEN void lt_modules_after_fork(void);
LT_HIDDEN void lt_find_self_text(void);
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

#endif
