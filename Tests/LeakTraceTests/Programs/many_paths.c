/* Hard stack shapes for the capture path (TracerStackShapeTests), built with -O2.
 *
 * Paths: two allocation sites (site_malloc, site_calloc) are each reached through 64 outer call
 * paths at the same stack depth: enter -> P1_x -> P2_x -> P3_x -> site, where each level calls
 * one of four distinct functions of identical shape (so identical frame sizes), chosen by two
 * bits of the path number: x = (path >> 0) & 3 for P1, (path >> 2) & 3 for P2, (path >> 4) & 3
 * for P3. The site's return address into the allocator and its stack pointer are the same for
 * all 64 paths: one stack-cache key with 64 stacks behind it. The 2 x 64 x 16 (site, path)
 * calls come in a shuffled order (fixed seed), each as a burst of 1 to 3 calls in a row.
 *
 * Recursion: rec_a and rec_b call each other (or themselves) down to a depth of 5 to 80 levels,
 * which of the two at each level given by a bit pattern, then rec_leaf allocates. 400 descents
 * of pseudo-random depth and pattern are freed; 16 descents (depth 5 + 5j, pattern j) leak.
 *
 * Every context (main, and two threads, thread_one and thread_two, running the same code at the
 * same time) leaks exactly:
 *   site_malloc, path p: 1 + p % 3 blocks of base + 1000 + p bytes
 *   site_calloc, path p: 1 block of base + 3000 + p bytes
 *   recursion j (0..15): 1 block of base + 5000 + j bytes (rec_leaf, then depth 5 + 5j frames
 *                        of rec_a/rec_b: rec_b at level k if bit k of leaking_pattern(j) is
 *                        set, innermost level first, then descend, recursion_phase, run_all)
 * with base 0 for main, 20000 and 40000 for the threads. Everything else is freed (temporary
 * sizes are below 1000 bytes, or 200000 bytes: above glibc's mmap threshold). Prints "ok". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noclone))
#define BARRIER(tag) __asm__ volatile("# " tag ::: "memory")

#define PATHS 64
#define CALLS_PER_PATH 16
#define LEAKING_DESCENTS 16
#define FREED_DESCENTS 400
#define MAX_DEPTH 80

struct request {
    unsigned path;
    int calloc_site;
    size_t size;
    void *result;
    uint64_t mix;
};

/* The leaked blocks, kept so the compiler cannot drop them (the tracer reports blocks never
 * freed, reachable or not). */
static void *kept[3][512];
static int kept_count[3];

static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- the paths ---- */

NOINLINE static void site_malloc(struct request *q) { q->result = malloc(q->size); BARRIER("sm"); q->mix += 1; }
NOINLINE static void site_calloc(struct request *q) { q->result = calloc(1, q->size); BARRIER("sc"); q->mix += 2; }

#define P3(x, salt)                                                                \
    NOINLINE static void P3_##x(struct request *q) {                               \
        q->mix = q->mix * 33 + (salt);                                             \
        if (q->calloc_site) { site_calloc(q); BARRIER("p3c" #x); q->mix ^= 3; }    \
        else { site_malloc(q); BARRIER("p3m" #x); q->mix ^= 5; }                   \
    }

#define PLEVEL(k, next, x, shift, salt)                                            \
    NOINLINE static void P##k##_##x(struct request *q) {                           \
        q->mix = q->mix * 31 + (salt);                                             \
        switch ((q->path >> (shift)) & 3) {                                        \
        case 0: next##_0(q); BARRIER(#k #x "0"); q->mix ^= 7; break;               \
        case 1: next##_1(q); BARRIER(#k #x "1"); q->mix ^= 9; break;               \
        case 2: next##_2(q); BARRIER(#k #x "2"); q->mix ^= 11; break;              \
        default: next##_3(q); BARRIER(#k #x "3"); q->mix ^= 13; break;             \
        }                                                                          \
    }

P3(0, 101) P3(1, 103) P3(2, 107) P3(3, 109)
PLEVEL(2, P3, 0, 4, 113) PLEVEL(2, P3, 1, 4, 127) PLEVEL(2, P3, 2, 4, 131) PLEVEL(2, P3, 3, 4, 137)
PLEVEL(1, P2, 0, 2, 139) PLEVEL(1, P2, 1, 2, 149) PLEVEL(1, P2, 2, 2, 151) PLEVEL(1, P2, 3, 2, 157)

NOINLINE static void enter(struct request *q) {
    switch (q->path & 3) {
    case 0: P1_0(q); BARRIER("e0"); q->mix ^= 17; break;
    case 1: P1_1(q); BARRIER("e1"); q->mix ^= 19; break;
    case 2: P1_2(q); BARRIER("e2"); q->mix ^= 23; break;
    default: P1_3(q); BARRIER("e3"); q->mix ^= 29; break;
    }
}

NOINLINE static void keep(int context, void *p) {
    if (!p) abort();
    kept[context][kept_count[context]++] = p;
}

NOINLINE static uint64_t paths_phase(int context, size_t base, uint64_t seed) {
    /* The schedule: every (site, path) pair CALLS_PER_PATH times, shuffled. */
    static unsigned short schedule[3][2 * PATHS * CALLS_PER_PATH];
    unsigned short *order = schedule[context];
    int n = 0;
    for (int site = 0; site < 2; site++)
        for (int path = 0; path < PATHS; path++)
            for (int i = 0; i < CALLS_PER_PATH; i++) order[n++] = (unsigned short)(site * PATHS + path);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_random(&seed) % (uint64_t)(i + 1));
        unsigned short t = order[i]; order[i] = order[j]; order[j] = t;
    }
    int leaked[2][PATHS] = {{0}};
    void *window[64] = {0};
    struct request q = {0};
    for (int i = 0; i < n; i++) {
        int site = order[i] / PATHS;
        unsigned path = order[i] % PATHS;
        int quota = site ? 1 : 1 + (int)(path % 3);
        int burst = 1 + (int)(next_random(&seed) % 3);
        for (int b = 0; b < burst; b++) {
            uint64_t r = next_random(&seed);
            int leak = b == 0 && leaked[site][path] < quota;
            q.path = path;
            q.calloc_site = site;
            q.size = leak ? base + (site ? 3000 : 1000) + path
                          : ((r & 63) == 0 ? 200000 : 8 + (size_t)(r >> 8) % 900);
            enter(&q);
            BARRIER("phase");
            if (!q.result) abort();
            ((char *)q.result)[0] = (char)i;
            if (leak) {
                leaked[site][path]++;
                keep(context, q.result);
            } else {
                size_t slot = (r >> 20) % 64;     /* freed later, or right away */
                free(window[slot]);
                window[slot] = q.result;
            }
        }
    }
    for (int i = 0; i < 64; i++) free(window[i]);
    for (int site = 0; site < 2; site++)
        for (unsigned path = 0; path < PATHS; path++)
            if (leaked[site][path] != (site ? 1 : 1 + (int)(path % 3))) abort();
    return q.mix;
}

/* ---- the recursion ---- */

struct descent {
    int depth;              /* levels of rec_a/rec_b */
    uint64_t pattern[2];    /* bit k: rec_b at level k */
    size_t size;
    void *result;
    uint64_t mix;
};

static int pattern_bit(const struct descent *d, int level) {
    return (int)((d->pattern[level / 64] >> (level % 64)) & 1);
}

NOINLINE static void rec_leaf(struct descent *d) { d->result = malloc(d->size); BARRIER("leaf"); d->mix += 1; }
NOINLINE static void rec_a(struct descent *d, int level);
NOINLINE static void rec_b(struct descent *d, int level);

NOINLINE static void rec_a(struct descent *d, int level) {
    d->mix = d->mix * 3 + 1;
    if (level + 1 >= d->depth) rec_leaf(d);
    else if (pattern_bit(d, level + 1)) rec_b(d, level + 1);
    else rec_a(d, level + 1);
    BARRIER("rec_a");
    d->mix ^= 2;
}

NOINLINE static void rec_b(struct descent *d, int level) {
    d->mix = d->mix * 5 + 7;
    if (level + 1 >= d->depth) rec_leaf(d);
    else if (pattern_bit(d, level + 1)) rec_b(d, level + 1);
    else rec_a(d, level + 1);
    BARRIER("rec_b");
    d->mix ^= 4;
}

NOINLINE static void descend(struct descent *d) {
    if (pattern_bit(d, 0)) rec_b(d, 0);
    else rec_a(d, 0);
    BARRIER("descend");
}

/* The pattern of leaking descent j: the same formula the test uses. */
static void leaking_pattern(int j, uint64_t pattern[2]) {
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(j + 1);
    pattern[0] = next_random(&s);
    pattern[1] = next_random(&s);
}

NOINLINE static uint64_t recursion_phase(int context, size_t base, uint64_t seed) {
    uint64_t mix = 0;
    int next_leak = 0;
    for (int i = 0; i < FREED_DESCENTS + LEAKING_DESCENTS; i++) {
        struct descent d = {0};
        if (i % ((FREED_DESCENTS + LEAKING_DESCENTS) / LEAKING_DESCENTS) == 0 && next_leak < LEAKING_DESCENTS) {
            d.depth = 5 + 5 * next_leak;
            leaking_pattern(next_leak, d.pattern);
            d.size = base + 5000 + (size_t)next_leak;
            descend(&d);
            keep(context, d.result);
            next_leak++;
        } else {
            uint64_t r = next_random(&seed);
            d.depth = 5 + (int)(r % (MAX_DEPTH - 4));
            d.pattern[0] = next_random(&seed);
            d.pattern[1] = next_random(&seed);
            d.size = 16 + (size_t)(r >> 16) % 500;
            descend(&d);
            free(d.result);
        }
        mix += d.mix;
    }
    if (next_leak != LEAKING_DESCENTS) abort();
    return mix;
}

NOINLINE static uint64_t run_all(int context) {
    size_t base = (size_t)context * 20000;
    uint64_t seed = 0x2545F4914F6CDD1Dull + (uint64_t)context * 7919;
    uint64_t mix = paths_phase(context, base, seed);
    BARRIER("run_all1");
    mix += recursion_phase(context, base, seed ^ 0xABCDEF);
    BARRIER("run_all2");
    return mix;
}

static uint64_t thread_mix[3];

/* One entry function per thread, so that each context's stacks differ in that frame. */
NOINLINE static void *thread_one(void *arg) {
    (void)arg;
    thread_mix[1] = run_all(1);
    BARRIER("thread_one");
    return NULL;
}

NOINLINE static void *thread_two(void *arg) {
    (void)arg;
    thread_mix[2] = run_all(2);
    BARRIER("thread_two");
    return NULL;
}

int main(void) {
    pthread_t threads[2];
    if (pthread_create(&threads[0], NULL, thread_one, NULL) != 0) return 1;
    if (pthread_create(&threads[1], NULL, thread_two, NULL) != 0) return 1;
    thread_mix[0] = run_all(0);
    BARRIER("main");
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    for (int c = 0; c < 3; c++)
        if (kept_count[c] != 2 * PATHS - 1 + PATHS + LEAKING_DESCENTS) return 3;
    printf("ok %d\n", kept_count[0] + kept_count[1] + kept_count[2]);
    return 0;
}
