/* Resolution of the real functions (core/real.h), and the pool that serves dlsym's own
 * allocations while it runs. */
#include "real.h"

#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct lt_real lt_real;

/* Every field has the type the system headers give its symbol. */
#define LT_REAL_CHECK(field, symbol, ret, params)                                             \
    _Static_assert(__builtin_types_compatible_p(__typeof__(lt_real.field), __typeof__(&symbol)), \
                   "struct lt_real." #field " does not match the declaration of " #symbol);
LT_HOOKED_FUNCTIONS(LT_REAL_CHECK)
#undef LT_REAL_CHECK

/* ---- bootstrap: dlsym itself calls calloc before the real functions are known ---- */

static uint8_t bootstrap_pool[64 * 1024] __attribute__((aligned(64)));
static _Atomic size_t bootstrap_used;
static _Atomic int resolve_state; /* 0 not yet, 1 resolving, 2 done */

int lt_in_bootstrap_pool(const void *p) {
    return (const uint8_t *)p >= bootstrap_pool && (const uint8_t *)p < bootstrap_pool + sizeof bootstrap_pool;
}

void *lt_bootstrap_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    size_t start, end;
    size_t used = atomic_load(&bootstrap_used);
    do {
        start = (used + align - 1) & ~(align - 1);
        end = start + size;
        if (end > sizeof bootstrap_pool) return NULL;
    } while (!atomic_compare_exchange_weak(&bootstrap_used, &used, end));
    return bootstrap_pool + start;
}

void lt_ensure_resolved(void) {
    int expected = 0;
    /* Whoever is resolving right now (in practice the only thread at start-up, re-entered
     * through dlsym's calloc) gets a quick "not yet", and the bootstrap pool serves it. */
    if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1)) return;
#define LT_RESOLVE(field, symbol, ret, params) \
    lt_real.field = (__typeof__(lt_real.field))dlsym(RTLD_NEXT, #symbol);
    LT_HOOKED_FUNCTIONS(LT_RESOLVE)
#undef LT_RESOLVE
    atomic_store(&resolve_state, 2);
}
