/* Deep recursion with varying paths, for Scripts/bench.sh.
 *
 *   recursebench THREADS CALLS_PER_THREAD
 *
 * Each thread walks random trees, the way a recursive-descent parser walks a random input,
 * until it has made about CALLS_PER_THREAD allocator calls. A walk picks a target depth
 * between 5 and 80 frames and descends toward it through four mutually recursive functions
 * (expr, term, factor, list), each calling the next level through one of several call sites
 * chosen at random; on the way some nodes also open a short side branch (a sibling subtree a
 * few levels deep). So both the depth and the path of the stack vary from one allocation to
 * the next. Fifteen walks in sixteen replay the tree of one of 256 fixed inputs (as a parser
 * sees similar inputs again), the sixteenth is new, so most stacks repeat and some were never
 * seen before. Nodes allocate at various depths (malloc, calloc, realloc of a growing buffer,
 * strdup-like copies; mostly small, now and then 64 KiB to 512 KiB; a node's size belongs to
 * the input, as an AST node's type would), and blocks go into a
 * window of 512 live blocks, so a free releases a block allocated at another depth and path.
 * At the end each thread leaks one block; main prints a checksum. Build: cc -O2 -g -pthread. */
#include "bench.h"

#define WINDOW 512

struct walker {
    uint64_t seed;        /* data: sizes, slots */
    uint64_t shape;       /* structure: depth, functions, call sites, where to allocate */
    long calls;           /* allocator calls made so far */
    int limit;            /* the current walk's target depth */
    int budget;           /* nodes left in the current walk */
    void *live[WINDOW];
    char *buffer;         /* grown with realloc by list nodes */
    size_t buffer_size;
    uint64_t checksum;
    int index;
};

static size_t pick_size(uint64_t r) {
    if ((r & 1023) == 0) return (size_t)64 * 1024 + ((r >> 10) % 29) * 16 * 1024;  /* 64-512 KiB */
    if ((r & 15) == 0) return (size_t)1024 << ((r >> 4) % 3);                      /* 1-4 KiB */
    return bench_small_sizes[(r >> 4) & 31];
}

/* Replaces the block in a random slot with a new one. */
static void keep(struct walker *w, void *p) {
    size_t slot = (next_random(&w->seed) >> 40) % WINDOW;
    free(w->live[slot]);
    w->live[slot] = p;
    w->calls += 2;
    if (p) w->checksum += ((unsigned char *)p)[0];
}

NOINLINE static void *node_malloc(size_t n) { void *p = malloc(n); BARRIER("nm"); if (p) *(char *)p = 1; return p; }
NOINLINE static void *node_calloc(size_t n) { void *p = calloc(1, n); BARRIER("nc"); return p; }
NOINLINE static void *node_copy(const char *text, size_t n) {
    char *p = malloc(n + 1);
    BARRIER("ncp");
    if (p) { memset(p, text[0], n); p[n] = 0; }
    return p;
}

static void expr(struct walker *w, int level);
static void term(struct walker *w, int level);
static void factor(struct walker *w, int level);
static void list(struct walker *w, int level);

/* Calls one of the four functions for the next level, through one of four call sites in the
 * caller (each caller has its own copy of this switch, so its own call instructions). */
#define DESCEND(w, level, r, tag)                                               \
    do {                                                                        \
        switch (((r) >> 20) & 3) {                                              \
        case 0: expr(w, (level) + 1); BARRIER(tag "0"); break;                  \
        case 1: term(w, (level) + 1); BARRIER(tag "1"); break;                  \
        case 2: factor(w, (level) + 1); BARRIER(tag "2"); break;                \
        default: list(w, (level) + 1); BARRIER(tag "3"); break;                 \
        }                                                                       \
    } while (0)

/* A side branch: a short subtree a few levels below this one, if the walk has nodes left. */
static int branch(struct walker *w, int level, uint64_t r) {
    return (r & 7) == 0 && w->budget > 0 && level + 1 < w->limit + 4;
}

static int go_on(struct walker *w, int level) {
    return level < w->limit && w->budget-- > 0;
}

NOINLINE static void expr(struct walker *w, int level) {
    uint64_t r = next_random(&w->shape);
    if (r & 1) keep(w, node_malloc(pick_size(r >> 40)));
    if (go_on(w, level)) DESCEND(w, level, r, "e");
    if (branch(w, level, r >> 30)) {
        int saved = w->limit;
        w->limit = level + 2 + (int)((r >> 34) % 4);
        DESCEND(w, level, r >> 2, "eb");
        w->limit = saved;
    }
    BARRIER("expr");
}

NOINLINE static void term(struct walker *w, int level) {
    uint64_t r = next_random(&w->shape);
    void *mine = NULL;
    if ((r & 3) == 0) { mine = node_calloc(pick_size(r >> 40)); w->calls++; }
    if (go_on(w, level)) {
        if (r & 4) DESCEND(w, level, r, "t");
        else DESCEND(w, level, r >> 3, "tt");
    }
    if (mine) { w->checksum += ((unsigned char *)mine)[0]; free(mine); w->calls++; } /* freed on the way up */
    BARRIER("term");
}

NOINLINE static void factor(struct walker *w, int level) {
    uint64_t r = next_random(&w->shape);
    if (go_on(w, level)) DESCEND(w, level, r, "f");
    if ((r & 3) == 1) keep(w, node_copy("factor", pick_size(r >> 40))); /* allocates on the way up */
    BARRIER("factor");
}

NOINLINE static void list(struct walker *w, int level) {
    uint64_t r = next_random(&w->shape), d = next_random(&w->seed);
    if ((r & 7) == 0) {
        size_t n = (size_t)64 << ((d >> 8) % 7);   /* 64 B - 4 KiB */
        char *p = realloc(w->buffer, n);
        BARRIER("lr");
        if (p) { w->buffer = p; w->buffer_size = n; p[0] = (char)level; }
        w->calls++;
    }
    if (go_on(w, level)) DESCEND(w, level, r, "l");
    if (branch(w, level, r >> 33)) {
        int saved = w->limit;
        w->limit = level + 1 + (int)((r >> 36) % 6);
        DESCEND(w, level, r >> 5, "lb");
        w->limit = saved;
    }
    BARRIER("list");
}

static void *run(void *arg) {
    struct walker *w = arg;
    long target = w->calls;
    w->calls = 0;
    while (w->calls < target) {
        /* Fifteen walks in sixteen replay one of 256 fixed inputs (the same tree, so the same
         * stacks and node sizes); the sixteenth is a tree never seen before. */
        uint64_t pick = next_random(&w->seed);
        w->shape = (pick & 15) ? 0x2545F4914F6CDD1Dull * (((pick >> 8) & 255) + 1) : pick | 1;
        uint64_t r = next_random(&w->shape);
        w->limit = 5 + (int)(r % 76);        /* 5 to 80 levels */
        w->budget = 200;
        switch ((r >> 8) & 3) {
        case 0: expr(w, 1); break;
        case 1: term(w, 1); break;
        case 2: factor(w, 1); break;
        default: list(w, 1); break;
        }
        BARRIER("run");
    }
    for (int i = 0; i < WINDOW; i++) free(w->live[i]);
    free(w->buffer);
    bench_leak(w->index, 2);
    return NULL;
}

int main(int argc, char **argv) {
    long arg[2];
    if (!bench_read_args(argc, argv, 2, arg, "recursebench THREADS CALLS_PER_THREAD")) return 2;
    int threads = (int)arg[0];
    long calls = arg[1];
    if (threads < 1 || threads > BENCH_MAX_THREADS || calls < 1) {
        fprintf(stderr, "recursebench: THREADS 1-64, CALLS_PER_THREAD >= 1\n");
        return 2;
    }
    struct walker *walkers[BENCH_MAX_THREADS];
    void *args[BENCH_MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        walkers[t] = calloc(1, sizeof(struct walker));
        if (!walkers[t]) return 1;
        walkers[t]->seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)(t + 1) * 0x2545F4914F6CDD1Dull;
        walkers[t]->calls = calls;
        walkers[t]->index = t;
        args[t] = walkers[t];
    }
    if (bench_run_threads(threads, run, args) != 0) return 1;
    uint64_t sum = 0;
    for (int t = 0; t < threads; t++) {
        sum += walkers[t]->checksum;
        free(walkers[t]);
    }
    printf("%llu\n", (unsigned long long)(sum & 0xffff));
    return 0;
}
