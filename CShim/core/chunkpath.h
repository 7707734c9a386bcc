/* Which allocator serves malloc, and the path of a block from glibc's chunk header
 * (core/chunkpath.c). */
#ifndef LEAKTRACE_CHUNKPATH_H
#define LEAKTRACE_CHUNKPATH_H

#include "../base/base.h"
#include "../format/records.h"

/* Which allocator serves malloc, found at start (lt_detect_allocator), read-only afterwards. */
struct lt_allocator {
    int is_glibc;
    char name[512];
};
extern struct lt_allocator lt_allocator;

LT_HIDDEN void lt_detect_allocator(void);
static inline int lt_chunk_path(const void *p) {
    /* glibc keeps the chunk's size word just before the user pointer; its low bits say
     * whether the chunk was mmapped on its own (IS_MMAPPED, 0x2) or belongs to a thread
     * arena (NON_MAIN_ARENA, 0x4). Only meaningful when the allocator is glibc's. */
    if (!lt_allocator.is_glibc) return PATH_UNKNOWN;
    size_t word = ((const size_t *)p)[-1];
    if (word & 0x2) return PATH_MMAP;
    if (word & 0x4) return PATH_THREAD_ARENA;
    return PATH_HEAP;
}

#endif
