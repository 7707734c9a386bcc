/* The tracer's own memory. Everything comes from raw mmap system calls, never from the
 * process's allocator (whose locks a hook may already be inside of: memray#1007) and never
 * through our own mmap hook. */
#include "base.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARENA_BLOCK (1u << 20)

static atomic_flag arena_lock = ATOMIC_FLAG_INIT;
static uint8_t *arena_cursor;
static size_t arena_left;

/* Every mapping the tracer made, for the exit scan to leave out: its tables hold the program's
 * addresses, which must not count as the program's pointers. Appended without a lock (a
 * signal handler may map); an entry whose mapping is gone has size 0. */
#define OWN_MAPPINGS_MAX 16384
static struct lt_own_mapping own_mappings[OWN_MAPPINGS_MAX];
static _Atomic uint64_t own_mapping_count;

void *lt_raw_mmap(size_t size) {
    long r = syscall(SYS_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r < 0 && r > -4096) return NULL;
    uint64_t i = atomic_fetch_add(&own_mapping_count, 1);
    if (i < OWN_MAPPINGS_MAX) {
        own_mappings[i].size = size;
        atomic_store_explicit(&own_mappings[i].start, (uint64_t)r, memory_order_release);
    }
    return (void *)r;
}

void lt_arena_free_pages(void *p, size_t size) {
    if (!p) return;
    uint64_t n = atomic_load(&own_mapping_count);
    for (uint64_t i = 0; i < n && i < OWN_MAPPINGS_MAX; i++)
        if (atomic_load_explicit(&own_mappings[i].start, memory_order_acquire) == (uint64_t)(uintptr_t)p)
            own_mappings[i].size = 0;
    syscall(SYS_munmap, p, size);
}

const struct lt_own_mapping *lt_own_mappings(uint64_t *count, int *complete) {
    uint64_t n = atomic_load(&own_mapping_count);
    *complete = n <= OWN_MAPPINGS_MAX;
    *count = n < OWN_MAPPINGS_MAX ? n : OWN_MAPPINGS_MAX;
    return own_mappings;
}

/* Bump allocation for memory the tracer keeps for the life of the process (tables, buffers).
 * Large requests get their own mapping. Returns zeroed memory. */
void *lt_arena_alloc(size_t size) {
    size = (size + 15) & ~(size_t)15;
    if (size >= ARENA_BLOCK / 4) return lt_raw_mmap((size + 4095) & ~(size_t)4095);
    /* Its holder may be preempted (it maps a block): waiters yield rather than spin. */
    while (atomic_flag_test_and_set_explicit(&arena_lock, memory_order_acquire)) sched_yield();
    if (arena_left < size) {
        uint8_t *block = lt_raw_mmap(ARENA_BLOCK);
        if (!block) {
            atomic_flag_clear_explicit(&arena_lock, memory_order_release);
            return NULL;
        }
        arena_cursor = block;
        arena_left = ARENA_BLOCK;
    }
    void *p = arena_cursor;
    arena_cursor += size;
    arena_left -= size;
    atomic_flag_clear_explicit(&arena_lock, memory_order_release);
    return p;
}
