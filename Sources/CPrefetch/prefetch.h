// A cache prefetch hint, which Swift has no spelling for. Header only: nothing to link.
#ifndef LEAKTRACE_PREFETCH_H
#define LEAKTRACE_PREFETCH_H

/// Asks the processor to start loading the cache line at `address` for writing. Only a hint:
/// it never faults, whatever the address.
static inline void leaktrace_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
