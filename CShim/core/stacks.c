/* Stack capture: into a fixed buffer on the hook's own stack, from the thread's validated
 * cache when the same stack is still in place, else by the walker (walk.c), else, for frames
 * the walker cannot step, by libunwind. The captured stack's id comes from core/intern.c. */
#include "stacks.h"
#include "intern.h"
#include "gate.h"
#include "modules.h"
#include "walk.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

static void stack_cache_after_fork(void);
static void stack_cache_init(void);

void lt_stacks_reset(void) {
    stack_cache_after_fork();
    lt_intern_reset();
}

void lt_stacks_init(void) {
    /* Per-thread caches avoid libunwind's global cache lock where libunwind was built with them;
     * Debian's was not and falls back to the global cache (see capture_stack). */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    lt_walk_init();
    stack_cache_init();
    lt_stacks_reset();
}

/* ---- the validated stack cache ----
 *
 * Most allocations come from a call path seen a moment ago. Each thread keeps recent stacks
 * keyed by the hook's CFA (the caller's stack pointer) and the caller's return address, with
 * the stack slot where each outer frame's return address lives (the walk reports them). A
 * later call with the same key is the same stack if every one of those slots still holds the
 * same return address: with the same stack pointer and instruction pointer, an unwinder would
 * compute the same frame addresses and read the same slots, frame by frame
 * (docs/design-shim.md discusses the limits: frames whose CFA depends on a frame pointer after
 * a variable-size alloca, and coroutine stacks). Checking costs one load per frame and gives
 * the stack's id without hashing it. LEAKTRACE_UNWIND=libunwind turns cache and walker off. */

#define CACHE_SETS 64
#define CACHE_WAYS 4
#define CACHE_MAX_FRAMES 64
/* A set that missed this many times in a row without a hit stops filling its ways: its keys
 * are reached through more call paths than it can hold (many callers of one helper at one
 * depth). One miss in FRUITLESS_RETRY still fills, so a change of phase is noticed. */
#define FRUITLESS_LIMIT 32
#define FRUITLESS_RETRY 16

struct cached_stack {
    uintptr_t cfa, ip0;           /* key */
    unsigned epoch;               /* valid only while equal to its cache's epoch */
    uint32_t stack_id;            /* 0 until interned */
    int depth;
    uintptr_t slot[CACHE_MAX_FRAMES];
    uintptr_t ip[CACHE_MAX_FRAMES];
};

/* What one thread's captures did; summed over all threads for LEAKTRACE_VERBOSE. */
struct capture_counts {
    uint64_t hits, walks, fills_skipped, fallbacks;
};

/* One thread's cache. Set-associative: with one entry per slot, two hot call sites whose keys
 * collided (which ones collide changes with ASLR from run to run) evicted each other on every
 * call. 256 entries: sqlite3 cycles through a few dozen hot call paths; with 32 entries it
 * missed on 45% of its calls, with 256 on 0.03%. At about 270 KiB it is not thread-local
 * storage (which glibc carves out of every thread's stack, breaking threads created with small
 * stacks) but mapped on a thread's first capture, and handed to the next new thread when its
 * thread exits. */
struct stack_cache {
    struct cached_stack entries[CACHE_SETS][CACHE_WAYS];
    unsigned char victim[CACHE_SETS];
    unsigned char fruitless[CACHE_SETS];   /* misses since the set's last hit, saturating */
    /* Bumped when the cache changes hands or its thread forks (stack ids are per trace):
     * every entry becomes stale at once, without touching the entries. */
    unsigned epoch;
    struct capture_counts counts;
    struct lt_walk_memory last_walk;
    /* Slots of a walk that fills no entry, and LEAKTRACE_UNWIND=verify's reference capture:
     * here rather than on the stack of a hook, which may run on a 16 KiB thread stack. */
    uintptr_t scratch[LT_MAX_DEPTH];
    struct stack_cache *next_free;
    struct stack_cache *next_made;         /* every cache ever made, for the counts */
};

static __thread struct stack_cache *thread_cache __attribute__((tls_model("initial-exec")));
/* Set once the thread's exit handler gave its cache back: later captures go uncached. */
static __thread int thread_cache_retired __attribute__((tls_model("initial-exec")));
static struct stack_cache *free_caches, *made_caches;
static atomic_flag free_caches_lock = ATOMIC_FLAG_INIT;
static pthread_key_t cache_owner_key;
static int cache_owner_key_ready;
/* Captures of threads without a cache (past their exit handler, or none could be mapped). */
static _Atomic uint64_t uncached_captures;

/* Held for a few instructions, but its holder may be preempted: with more threads than cores
 * (1,100 starting at once in hazard case 15) pure spinning burnt whole time slices, so a
 * waiter yields. */
static void lock_caches(void) {
    while (atomic_flag_test_and_set_explicit(&free_caches_lock, memory_order_acquire)) sched_yield();
}

static void unlock_caches(void) {
    atomic_flag_clear_explicit(&free_caches_lock, memory_order_release);
}

/* The key's destructor: runs when the owning thread exits. */
static void give_back_cache(void *cache) {
    struct stack_cache *c = cache;
    thread_cache = NULL;
    thread_cache_retired = 1;
    lock_caches();
    c->next_free = free_caches;
    free_caches = c;
    unlock_caches();
}

static struct stack_cache *claim_cache(void) {
    if (thread_cache_retired || !cache_owner_key_ready) return NULL;
    lock_caches();
    struct stack_cache *c = free_caches;
    if (c) free_caches = c->next_free;
    unlock_caches();
    if (!c) {
        c = lt_raw_mmap((sizeof *c + 4095) & ~(size_t)4095);
        if (!c) return NULL;
        lock_caches();
        c->next_made = made_caches;
        made_caches = c;
        unlock_caches();
    }
    c->epoch++;
    c->last_walk.n = 0;
    /* pthread_setspecific may allocate (keys past the first 32): that is the tracer's own. */
    int guard = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    int failed = pthread_setspecific(cache_owner_key, c) != 0;
    lt_self.in_hook = guard;
    if (failed) {
        give_back_cache(c);
        thread_cache_retired = 0;
        return NULL;
    }
    thread_cache = c;
    return c;
}

static void stack_cache_init(void) {
    cache_owner_key_ready = pthread_key_create(&cache_owner_key, give_back_cache) == 0;
}

/* In a forked child (one thread, the one that forked): ids start over, and a lock some other
 * thread of the parent held is nobody's now. */
static void stack_cache_after_fork(void) {
    atomic_flag_clear(&free_caches_lock);
    if (thread_cache) thread_cache->epoch++;
    made_caches = thread_cache; /* the other threads' caches count for the parent */
    if (thread_cache) {
        thread_cache->next_made = NULL;
        thread_cache->counts = (struct capture_counts){0};
    }
    lt_walk_after_fork();
}

static inline int cache_hit(const struct cached_stack *e) {
    for (int k = 1; k < e->depth; k++)
        if (*(const uintptr_t *)e->slot[k] != e->ip[k]) return 0;
    return 1;
}

/* Looks a key up in its set. Returns a way whose stack is still in place (a hit), or NULL and
 * in *fill the way to walk into (NULL when the set has stopped filling). A key may hold
 * several ways: when one caller frame is reached from different outer frames in turn (sqlite3's
 * interpreter calls one helper from many opcodes at one depth), each path keeps its own. */
static inline struct cached_stack *cache_lookup(struct stack_cache *c, uintptr_t cfa, uintptr_t ip0,
                                                struct cached_stack **fill) {
    uint64_t h = ((uint64_t)cfa ^ ((uint64_t)ip0 * 0x9E3779B97F4A7C15ull));
    unsigned set = (unsigned)((h ^ (h >> 29)) & (CACHE_SETS - 1));
    struct cached_stack *ways = c->entries[set];
    struct cached_stack *spare = NULL;
    for (int w = 0; w < CACHE_WAYS; w++) {
        struct cached_stack *e = &ways[w];
        if (e->epoch != c->epoch || e->stack_id == 0) {
            if (!spare) spare = e;
        } else if (e->cfa == cfa && e->ip0 == ip0 && cache_hit(e)) {
            c->fruitless[set] = 0;
            return e;
        }
    }
    *fill = NULL;
    if (c->fruitless[set] < FRUITLESS_LIMIT + FRUITLESS_RETRY) c->fruitless[set]++;
    if (c->fruitless[set] >= FRUITLESS_LIMIT) {
        if (c->fruitless[set] < FRUITLESS_LIMIT + FRUITLESS_RETRY) {
            c->counts.fills_skipped++;
            return NULL;
        }
        c->fruitless[set] = FRUITLESS_LIMIT; /* this miss fills: a retry */
    }
    struct cached_stack *victim = spare ? spare : &ways[c->victim[set]++ % CACHE_WAYS];
    victim->cfa = cfa;
    victim->ip0 = ip0;
    victim->epoch = c->epoch;
    victim->depth = 0;
    victim->stack_id = 0;
    *fill = victim;
    return NULL;
}

/* ---- capture ---- */

/* LEAKTRACE_UNWIND=verify: every capture, cache hit or walk, is checked against a full
 * libunwind capture. */
static _Atomic uint64_t lt_unwind_verified, lt_unwind_mismatches;
/* Captures made with unw_backtrace. */
static _Atomic uint64_t lt_unwind_backtraces;

static int capture_step_by_step(uintptr_t *frames, int max);

/* Compares a capture of `depth` frames with libunwind's walk of up to `max`. */
__attribute__((noinline)) static void verify_capture(struct stack_cache *c, const uintptr_t *frames, int depth,
                                                     int max) {
    if (lt_self.loader_locked) return; /* no libunwind now: see capture_stack */
    uintptr_t *expected = c->scratch;
    int guard = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    int n = capture_step_by_step(expected, max);
    lt_self.in_hook = guard;
    int same = n == depth && memcmp(frames, expected, (size_t)n * sizeof *frames) == 0;
    atomic_fetch_add(&lt_unwind_verified, 1);
    if (!same) atomic_fetch_add(&lt_unwind_mismatches, 1);
}

/* unw_backtrace, for frames the walker cannot step and LEAKTRACE_UNWIND=libunwind. */
static int capture_stack(uintptr_t *frames, int max);

/* The id of the caller's stack (innermost first, without the tracer's own frames). `cfa`,
 * `ip0` and `bp` are the hook's LT_CALL_SITE. A walk that fills a cache entry writes its
 * frames and slots straight into it, and the entry gets the id once it is known. */
uint32_t lt_capture_stack_id(uintptr_t cfa, uintptr_t ip0, uintptr_t bp) {
    uintptr_t frames[LT_MAX_DEPTH];
    int max = lt_config.depth;
    if (lt_config.unwind != LT_UNWIND_LIBUNWIND) {
        /* A cache hit reads only the stack, and a walk only the stack and the modules' CFI:
         * both are safe even when the loader's lock is held. */
        struct stack_cache *c = thread_cache;
        if (LT_UNLIKELY(!c)) c = claim_cache();
        struct cached_stack *e = NULL;
        if (LT_LIKELY(c != NULL) && lt_config.unwind != LT_UNWIND_WALK && max <= CACHE_MAX_FRAMES) {
            struct cached_stack *hit = cache_lookup(c, cfa, ip0, &e);
            if (hit) {
                c->counts.hits++;
                if (LT_UNLIKELY(lt_config.unwind == LT_UNWIND_VERIFY)) verify_capture(c, hit->ip, hit->depth, max);
                return hit->stack_id;
            }
        }
        /* A thread without a cache (it is exiting) has nowhere to put the slots: libunwind. */
        uintptr_t *walked = e ? e->ip : frames;
        int n = c ? lt_walk_stack(ip0, cfa, bp, walked, e ? e->slot : c->scratch, max, &c->last_walk) : -1;
        if (n > 0) {
            c->counts.walks++;
            if (LT_UNLIKELY(lt_config.unwind == LT_UNWIND_VERIFY)) verify_capture(c, walked, n, max);
            uint32_t stack = lt_stack_id(walked, n);
            if (e) {
                e->depth = n;
                e->stack_id = stack;
            }
            return stack;
        }
        if (c) c->counts.fallbacks++;
        else atomic_fetch_add_explicit(&uncached_captures, 1, memory_order_relaxed);
    }
    if (LT_UNLIKELY(lt_self.loader_locked)) {
        /* The caller's frame is known without unwinding; the rest is not (capture_stack). */
        frames[0] = ip0;
        return lt_stack_id(frames, max > 0 ? 1 : 0);
    }
    return lt_stack_id(frames, capture_stack(frames, max));
}

/* The stack of a signal context (a crash), innermost first, frame 0 being the interrupted
 * instruction itself. The walker looks up the rule of the byte before each frame's address
 * (a return address points after its call); for frame 0 that would be the instruction before
 * the interrupted one, so it is given the address one byte on. libunwind, which takes a lock
 * and may call dl_iterate_phdr, is used only when the signal did not interrupt the tracer
 * (which may be inside libunwind: libunwind#425) nor a walk of the loader's list. */
uint32_t lt_capture_context_stack_id(const ucontext_t *uc, int may_use_libunwind) {
    uintptr_t frames[LT_MAX_DEPTH], slots[LT_MAX_DEPTH];
    int max = lt_config.depth;
    const greg_t *regs = uc->uc_mcontext.gregs;
    uintptr_t pc = (uintptr_t)regs[REG_RIP];
    int n = lt_walk_stack(pc + 1, (uintptr_t)regs[REG_RSP], (uintptr_t)regs[REG_RBP], frames, slots, max, NULL);
    if (n > 0) {
        frames[0] = pc;
    } else if (may_use_libunwind && !lt_self.loader_locked) {
        unw_cursor_t cursor;
        n = 0;
        lt_unwind_enter();
        if (unw_init_local2(&cursor, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) == 0) {
            do {
                unw_word_t ip;
                if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
                frames[n++] = (uintptr_t)ip;
            } while (n < max && unw_step(&cursor) > 0);
        }
        lt_unwind_leave();
    }
    if (n <= 0) {
        frames[0] = pc;
        n = max > 0 ? 1 : 0;
    }
    return lt_stack_id(frames, n);
}

/* After dlclose. unw_backtrace keeps a per-address cache that nothing empties (libunwind
 * 1.6.2): a library loaded later at the same address is unwound with the old library's rules
 * and its stacks end early. unw_flush_cache empties the cache unw_step reads. */
void lt_stacks_forget_code(void) {
    lt_walk_forget_rules();
    lt_unwind_enter();
    unw_flush_cache(unw_local_addr_space, 0, 0);
    lt_unwind_leave();
}


/* The capture counts of every thread so far, for LEAKTRACE_VERBOSE at exit. */
void lt_capture_summary(struct lt_capture_summary *s) {
    *s = (struct lt_capture_summary){0};
    lock_caches();
    for (struct stack_cache *c = made_caches; c; c = c->next_made) {
        s->hits += c->counts.hits;
        s->walks += c->counts.walks;
        s->fills_skipped += c->counts.fills_skipped;
        s->fallbacks += c->counts.fallbacks;
    }
    unlock_caches();
    s->fallbacks += atomic_load(&uncached_captures);
    s->backtraces = atomic_load(&lt_unwind_backtraces);
    s->rules_learned = atomic_load(&lt_walk_counts.rules_learned);
    s->rules_unsupported = atomic_load(&lt_walk_counts.rules_unsupported);
    s->verified = atomic_load(&lt_unwind_verified);
    s->mismatches = atomic_load(&lt_unwind_mismatches);
}

/* Captures the caller's stack with unw_backtrace, innermost first, without our own frames. */
static int capture_with_libunwind(uintptr_t *frames, int max);

static int capture_stack(uintptr_t *frames, int max) {
    /* libunwind holds a process-wide cache lock while it calls dl_iterate_phdr (Debian's build
     * has no per-thread caches: it turns UNW_CACHE_PER_THREAD into UNW_CACHE_GLOBAL). A thread
     * inside the program's own dl_iterate_phdr holds the loader's list lock; unwinding there
     * would wait for libunwind's lock while its holder waits for the loader's: a deadlock
     * (hazard 3). Such a call gets no stack beyond what the caller already knows. */
    if (LT_UNLIKELY(lt_self.loader_locked)) return 0;
    /* libunwind allocates on a thread's first unwind (its per-thread cache key): that is the
     * tracer's own memory, not an untraced program call. */
    int guard = lt_self.in_hook;
    lt_self.in_hook = LT_IN_TRACER;
    int n = capture_with_libunwind(frames, max);
    lt_self.in_hook = guard;
    return n;
}

/* The reference for LEAKTRACE_UNWIND=verify: libunwind's step-by-step walk, which reads each
 * frame's CFI through the cache unw_flush_cache empties. unw_backtrace cannot be the truth
 * the walker is checked against: after dlclose it unwinds a library loaded at the same
 * address with the old library's rules. */
static int capture_step_by_step(uintptr_t *frames, int max) {
    unw_context_t context;
    unw_cursor_t cursor;
    int n = 0;
    lt_unwind_enter();
    if (unw_getcontext(&context) == 0 && unw_init_local(&cursor, &context) == 0) {
        while (n < max && unw_step(&cursor) > 0) {
            unw_word_t ip;
            unw_get_reg(&cursor, UNW_REG_IP, &ip);
            if (n == 0 && ip >= lt_code.self_text_start && ip < lt_code.self_text_end) continue;
            frames[n++] = (uintptr_t)ip;
        }
    }
    lt_unwind_leave();
    return n;
}

static int capture_with_libunwind(uintptr_t *frames, int max) {
    void *raw[LT_MAX_DEPTH + 8];
    int want = max + 8;
    if (want > LT_MAX_DEPTH + 8) want = LT_MAX_DEPTH + 8;
    atomic_fetch_add_explicit(&lt_unwind_backtraces, 1, memory_order_relaxed);
    lt_unwind_enter();
    int n = unw_backtrace(raw, want);
    lt_unwind_leave();
    int skip = 0;
    while (skip < n && (uintptr_t)raw[skip] >= lt_code.self_text_start &&
           (uintptr_t)raw[skip] < lt_code.self_text_end)
        skip++;
    int count = n - skip;
    if (count > max) count = max;
    for (int i = 0; i < count; i++) frames[i] = (uintptr_t)raw[skip + i];
    return count;
}
