/* The malloc family. Each hook: pass through when nested or not tracing; call the real
 * function; record. Allocations are recorded after the real call returns, frees before the
 * real free runs: another thread may get the same address back the moment free returns
 * (the order heaptrack and memray use). errno is preserved across the recording. */
#include "../core/real.h"
#include "../core/stacks.h"
#include "../core/intern.h"
#include "../core/chunkpath.h"
#include "../io/buffers.h"
#include "../io/rings.h"
#include "../format/records.h"

#include <string.h>

/* ---- recording ---- */

/* Puts the event in the thread's ring; a thread without one (past the thousandth, or exiting)
 * appends it under the event lock, after the rings' older events. */
static inline void record_event(struct lt_event *e) {
    if (LT_LIKELY(lt_ring_push(e))) return;
    lt_lock_events();
    lt_append_event_locked(e, lt_current_tid());
    lt_unlock(&lt_buf.event_lock);
}

static void record_alloc(int fn, void *p, size_t size, uintptr_t cfa, uintptr_t ip0, uintptr_t bp) {
    int saved = errno;
    struct lt_event e = {
        .tag = TAG_ALLOC,
        .info = (uint8_t)(fn | (lt_chunk_path(p) << 4)),
        .addr = (uint64_t)(uintptr_t)p,
        .size = size,
        .stack = lt_capture_stack_id(cfa, ip0, bp),
    };
    record_event(&e);
    errno = saved;
}

static void record_release(uint8_t tag, void *p) {
    struct lt_event e = {.tag = tag, .addr = (uint64_t)(uintptr_t)p};
    record_event(&e);
}

static void record_free(void *p) {
    int saved = errno;
    record_release(TAG_FREE, p);
    errno = saved;
}

static void record_realloc(int fn_bit, int status, void *old, void *p, size_t size, uint32_t stack) {
    int path = p ? lt_chunk_path(p) : 0;
    struct lt_event e = {
        .tag = TAG_REALLOC,
        .info = (uint8_t)(status | (path << 4) | (fn_bit << 6)),
        .addr = (uint64_t)(uintptr_t)old,
        .addr2 = (uint64_t)(uintptr_t)p,
        .size = size,
        .stack = stack,
    };
    record_event(&e);
}

/* ---- hooks ---- */

/* Each hook returns with the call-clobbered general registers zeroed (the result excepted):
 * the tracer's work leaves copies of block addresses in them, which the exit scan, or a fatal
 * signal's scan reading the interrupted registers, would take for the program's pointers. A
 * few register-clearing instructions per call. */
#define LT_ALLOCATOR_ENTRY LT_EXPORT __attribute__((zero_call_used_regs("all-gpr")))

LT_ALLOCATOR_ENTRY void *malloc(size_t size) {
    if (!LT_HAVE_REAL(malloc)) return lt_bootstrap_alloc(size, 16);
    if (!lt_hook_enter()) return lt_real.malloc(size);
    void *p = lt_real.malloc(size);
    if (LT_LIKELY(p != NULL)) record_alloc(FN_MALLOC, p, size, LT_CALL_SITE);
    lt_hook_leave();
    return p;
}

/* A name for our own malloc that no other object can interpose. */
LT_HIDDEN extern void *lt_own_malloc(size_t) __attribute__((alias("malloc")));

LT_ALLOCATOR_ENTRY void free(void *p) {
    if (LT_UNLIKELY(p == NULL)) return;
    if (LT_UNLIKELY(lt_in_bootstrap_pool(p))) return;
    if (!LT_HAVE_REAL(free)) return;
    if (!lt_hook_enter()) {
        lt_real.free(p);
        return;
    }
    record_free(p);
    lt_real.free(p);
    lt_hook_leave();
}

LT_ALLOCATOR_ENTRY void *calloc(size_t n, size_t size) {
    if (!LT_HAVE_REAL(calloc)) {
        size_t total;
        if (__builtin_mul_overflow(n, size, &total)) return NULL;
        return lt_bootstrap_alloc(total, 16); /* pool memory is zeroed and never reused */
    }
    if (!lt_hook_enter()) return lt_real.calloc(n, size);
    void *p = lt_real.calloc(n, size);
    if (LT_LIKELY(p != NULL)) record_alloc(FN_CALLOC, p, n * size, LT_CALL_SITE);
    lt_hook_leave();
    return p;
}

static void *realloc_common(int fn, void *old, size_t n, size_t size, uintptr_t cfa, uintptr_t ip0,
                            uintptr_t bp) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) total = (size_t)-1;
    if (LT_UNLIKELY(old && lt_in_bootstrap_pool(old))) {
        /* Memory handed out during bootstrap moves to the real allocator. */
        void *p = malloc(total);
        if (p) memcpy(p, old, total); /* the pool outlives any read past the old block */
        return p;
    }
    if (!LT_HAVE_REAL(realloc) || !lt_real.reallocarray) return NULL;
    if (!lt_hook_enter())
        return fn == FN_REALLOC ? lt_real.realloc(old, size) : lt_real.reallocarray(old, n, size);
    int saved = errno;
    uint32_t stack = lt_capture_stack_id(cfa, ip0, bp);
    /* Released before the call, so no other thread's allocation of the same address can be
     * ordered before it (docs/trace-format.md, REALLOC). */
    if (old) record_release(TAG_REALLOC_RELEASE, old);
    errno = saved;
    void *p = fn == FN_REALLOC ? lt_real.realloc(old, size) : lt_real.reallocarray(old, n, size);
    saved = errno;
    int status = p ? REALLOC_OK : (old && total == 0 ? REALLOC_FREED : REALLOC_FAILED);
    if (p || old) record_realloc(fn == FN_REALLOCARRAY, status, old, p, total, stack);
    errno = saved;
    lt_hook_leave();
    return p;
}

LT_ALLOCATOR_ENTRY void *realloc(void *old, size_t size) { return realloc_common(FN_REALLOC, old, 1, size, LT_CALL_SITE); }

LT_ALLOCATOR_ENTRY void *reallocarray(void *old, size_t n, size_t size) {
    return realloc_common(FN_REALLOCARRAY, old, n, size, LT_CALL_SITE);
}

LT_ALLOCATOR_ENTRY int posix_memalign(void **out, size_t align, size_t size) {
    if (!LT_HAVE_REAL(posix_memalign)) {
        void *p = lt_bootstrap_alloc(size, align);
        if (!p) return ENOMEM;
        *out = p;
        return 0;
    }
    if (!lt_hook_enter()) return lt_real.posix_memalign(out, align, size);
    int r = lt_real.posix_memalign(out, align, size);
    if (r == 0) record_alloc(FN_POSIX_MEMALIGN, *out, size, LT_CALL_SITE);
    lt_hook_leave();
    return r;
}

#define ALIGNED_HOOK(name, FN, params, args, size_expr)             \
    LT_ALLOCATOR_ENTRY void *name params {                                 \
        if (!LT_HAVE_REAL(name)) return lt_bootstrap_alloc(size_expr, 4096);        \
        if (!lt_hook_enter()) return lt_real.name args;             \
        void *p = lt_real.name args;                                \
        if (LT_LIKELY(p != NULL)) record_alloc(FN, p, size_expr, LT_CALL_SITE); \
        lt_hook_leave();                                            \
        return p;                                                   \
    }

ALIGNED_HOOK(aligned_alloc, FN_ALIGNED_ALLOC, (size_t align, size_t size), (align, size), size)
ALIGNED_HOOK(memalign, FN_MEMALIGN, (size_t align, size_t size), (align, size), size)
ALIGNED_HOOK(valloc, FN_VALLOC, (size_t size), (size), size)
ALIGNED_HOOK(pvalloc, FN_PVALLOC, (size_t size), (size), size)
