// What the replay's live table needs from C: a cache prefetch (Swift has none) and mremap
// (variadic in glibc's header, so Swift cannot call it). Static inline, so the Swift compiler
// inlines them into the caller.
#ifndef LEAKTRACE_CLIVETABLE_H
#define LEAKTRACE_CLIVETABLE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <sys/mman.h>

/// Asks the CPU to bring the cache line at `address` in for writing, without waiting for it.
/// A hint: it never faults, whatever the address.
static inline __attribute__((always_inline)) void lt_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/// Grows an anonymous mapping to `new_size` bytes, moving it if it must (its pages move with
/// it, nothing is copied); the bytes past `old_size` read as zero. NULL when it cannot.
static inline void *lt_mremap_grow(void *address, size_t old_size, size_t new_size) {
    void *moved = mremap(address, old_size, new_size, MREMAP_MAYMOVE);
    return moved == MAP_FAILED ? NULL : moved;
}

#endif
