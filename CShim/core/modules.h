/* The module map (core/modules.c): MODULES snapshots, and the code ranges the hooks and the
 * stack capture must recognise. */
#ifndef LEAKTRACE_MODULES_H
#define LEAKTRACE_MODULES_H

#include "../base/base.h"

/* Code address ranges found at start, read-only afterwards. */
struct lt_code_ranges {
    /* our own text segment, to drop the tracer's frames from stacks */
    uintptr_t self_text_start, self_text_end;
    /* libunwind's text segment: see the pipe2 hook */
    uintptr_t unwind_text_start, unwind_text_end;
    /* Code whose mmap/munmap/mremap calls are not the program's: libunwind's, and a non-glibc
     * allocator's (see lt_is_internal_mapping_caller). */
    struct { uintptr_t start, end; } internal_mappers[4];
    int internal_mapper_count;
};
extern struct lt_code_ranges lt_code;

/* Writes a MODULES record if the set of loaded objects changed (or always, with force). */
LT_HIDDEN void lt_modules_snapshot(int force);
/* The same for the writer thread: skipped while another thread takes a snapshot. */
LT_HIDDEN void lt_modules_snapshot_unless_busy(void);
/* In a forked child: its trace starts with a snapshot of its own. */
LT_HIDDEN void lt_modules_after_fork(void);
/* Finds the tracer's and libunwind's code (at start). */
LT_HIDDEN void lt_find_self_text(void);
/* Adds the executable segment holding `address` to the code whose mapping calls are not the
 * program's (at start only). */
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
    for (int i = 0; i < lt_code.internal_mapper_count; i++)
        if (caller >= lt_code.internal_mappers[i].start && caller < lt_code.internal_mappers[i].end) return 1;
    return 0;
}

#endif
