/* Hard stack shapes for Scripts/bench.sh: every allocation site is reached through 256
 * different outer call paths at the same stack depth.
 *
 *   pathsbench THREADS DEPTH CALLS_PER_THREAD
 *
 * Each thread runs CALLS_PER_THREAD iterations. An iteration picks (xorshift) an operation, a
 * size, a slot in a window of 1024 live blocks and a path number 0..255, then descends
 * through enter and four levels L1..L4 to one of four allocation sites (site_malloc, site_calloc, site_realloc,
 * site_large). At each level two bits of the path number choose one of four distinct call
 * instructions: which of two variants of the next level (L<k>_a or L<k>_b, distinct noinline
 * functions of identical shape, hence identical frame sizes) and which of two call
 * instructions to it. So the 256 paths differ by return address in five frames (the loop and
 * L1..L4) while the allocation site, its return address into the allocator and the stack
 * pointer at the allocator call are the same for all 256: a stack cache keyed by call site and
 * stack pointer sees one key per site with 256 different stacks behind it.
 *
 * DEPTH is the number of frames from the allocation site up to and including clone(): clone,
 * start_thread, run, DEPTH-10 frames of plain recursion, churn, enter, L1..L4, the site
 * (DEPTH >= 10).
 *
 * Sizes: 8 B to 1 KiB mostly (32 classes), 2 to 64 KiB for one call in 32, and the large site
 * (one call in 256) 64 KiB to 1 MiB in 16 KiB steps, much of it above glibc's 128 KiB mmap
 * threshold. A free (and realloc) hits the block in a random slot, allocated through another
 * path. At the end each thread leaks one block; main prints a checksum so the work is not
 * optimised away.
 *
 * Build: cc -O2 -g -pthread (the functions are noinline and noclone, every call is followed by
 * an empty asm statement so no call becomes a tail call, and the bodies differ so that identical
 * code folding cannot merge the variants). */
#include "bench.h"

#define WINDOW 1024

enum kind { K_MALLOC, K_CALLOC, K_REALLOC, K_LARGE };

struct call {
    unsigned path;      /* 0..255: two bits per level */
    enum kind kind;
    size_t size;
    void *old;          /* realloc's block */
    void *result;
    uint64_t mix;       /* touched at every level, so every variant's body differs */
};

/* ---- the four allocation sites: one call instruction into the allocator each ---- */

NOINLINE static void site_malloc(struct call *c) { c->result = malloc(c->size); BARRIER("site_malloc"); c->mix += 1; }
NOINLINE static void site_calloc(struct call *c) { c->result = calloc(1, c->size); BARRIER("site_calloc"); c->mix += 2; }
NOINLINE static void site_realloc(struct call *c) { c->result = realloc(c->old, c->size); BARRIER("site_realloc"); c->mix += 3; }
NOINLINE static void site_large(struct call *c) { c->result = malloc(c->size); BARRIER("site_large"); c->mix += 4; }

/* L4: its variant is the last choice; it calls the site for the operation. */
#define LEVEL4(v, salt)                                                        \
    NOINLINE static void L4_##v(struct call *c) {                              \
        c->mix = c->mix * 33 + (salt);                                         \
        switch (c->kind) {                                                     \
        case K_MALLOC: site_malloc(c); BARRIER("L4" #v "m"); c->mix ^= 11; break;  \
        case K_CALLOC: site_calloc(c); BARRIER("L4" #v "c"); c->mix ^= 13; break;  \
        case K_REALLOC: site_realloc(c); BARRIER("L4" #v "r"); c->mix ^= 17; break; \
        default: site_large(c); BARRIER("L4" #v "l"); c->mix ^= 19; break;          \
        }                                                                      \
    }

/* L<k>: two bits of the path choose one of four call instructions: variant a or b of the next
 * level, each through one of two call instructions. */
#define LEVEL(k, next, v, shift, salt)                                         \
    NOINLINE static void L##k##_##v(struct call *c) {                          \
        c->mix = c->mix * 31 + (salt);                                         \
        switch ((c->path >> (shift)) & 3) {                                    \
        case 0: c->mix += 3; next##_a(c); BARRIER(#k #v "0"); c->mix ^= 5; break;  \
        case 1: c->mix += 7; next##_a(c); BARRIER(#k #v "1"); c->mix ^= 9; break;  \
        case 2: c->mix += 11; next##_b(c); BARRIER(#k #v "2"); c->mix ^= 15; break; \
        default: c->mix += 13; next##_b(c); BARRIER(#k #v "3"); c->mix ^= 21; break; \
        }                                                                      \
    }

LEVEL4(a, 101)
LEVEL4(b, 103)
LEVEL(3, L4, a, 6, 107)
LEVEL(3, L4, b, 6, 109)
LEVEL(2, L3, a, 4, 113)
LEVEL(2, L3, b, 4, 127)
LEVEL(1, L2, a, 2, 131)
LEVEL(1, L2, b, 2, 137)

/* The loop frame: bits 0-1 of the path choose one of four call instructions into L1. */
NOINLINE static void enter(struct call *c) {
    switch (c->path & 3) {
    case 0: c->mix += 1; L1_a(c); BARRIER("e0"); c->mix ^= 2; break;
    case 1: c->mix += 3; L1_a(c); BARRIER("e1"); c->mix ^= 4; break;
    case 2: c->mix += 5; L1_b(c); BARRIER("e2"); c->mix ^= 6; break;
    default: c->mix += 7; L1_b(c); BARRIER("e3"); c->mix ^= 8; break;
    }
}

static size_t small_size(uint64_t r) {
    if ((r & 31) == 0) return (size_t)1024 << ((r >> 5) % 7);   /* 2 KiB - 64 KiB */
    return bench_small_sizes[(r >> 5) & 31];                          /* 8 B - 1 KiB */
}

NOINLINE static void churn(struct bench_job *job) {
    void *live[WINDOW] = {0};
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)(job->index + 1) * 0x2545F4914F6CDD1Dull;
    struct call c = {0};
    for (long i = 0; i < job->calls; i++) {
        uint64_t r = next_random(&seed);
        uint64_t r2 = next_random(&seed);
        size_t slot = (r >> 32) % WINDOW;
        c.path = (unsigned)(r >> 48) & 255;
        c.old = NULL;
        if ((r2 & 255) == 0) {
            c.kind = K_LARGE;
            c.size = (size_t)64 * 1024 + ((r2 >> 8) % 61) * 16 * 1024;  /* 64 KiB - 1 MiB */
        } else {
            unsigned op = (unsigned)(r & 15);
            c.kind = op < 7 ? K_MALLOC : op < 10 ? K_CALLOC : K_REALLOC;
            c.size = small_size(r2 >> 8);
        }
        if (c.kind == K_REALLOC) c.old = live[slot];
        else free(live[slot]);
        enter(&c);
        live[slot] = c.result;
        if (c.result) {
            ((unsigned char *)c.result)[0] = (unsigned char)i;
            job->checksum += ((unsigned char *)c.result)[0] ^ (unsigned char)c.size;
        }
    }
    for (int i = 0; i < WINDOW; i++) free(live[i]);
    bench_leak(job->index, 1);
    job->checksum += c.mix;
}

NOINLINE static void descend(struct bench_job *job, int level) {
    if (level <= 1) {
        churn(job);
        BARRIER("descend-leaf");
        return;
    }
    descend(job, level - 1);
    BARRIER("descend"); /* keep the recursion from becoming a loop */
}

static void *run(void *arg) {
    struct bench_job *job = arg;
    if (job->recursion > 0) descend(job, job->recursion);
    else churn(job);
    BARRIER("run");
    return NULL;
}

int main(int argc, char **argv) {
    return bench_main(argc, argv, "pathsbench", 10, run);
}
