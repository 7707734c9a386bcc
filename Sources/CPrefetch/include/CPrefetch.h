// Cache prefetch for the replay's live table: Swift has no prefetch of its own. A static
// inline function, so the Swift compiler inlines it into the caller as one instruction.
#ifndef LEAKTRACE_CPREFETCH_H
#define LEAKTRACE_CPREFETCH_H

/// Asks the CPU to bring the cache line at `address` in for writing, without waiting for it.
/// A hint: it never faults, whatever the address.
static inline __attribute__((always_inline)) void lt_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
