/* Allocation-heavy workload for Scripts/bench.sh.
 *
 *   allocbench THREADS DEPTH CALLS_PER_THREAD
 *
 * Each thread recurses to DEPTH frames, then runs a mix of malloc, free, calloc and realloc:
 * mostly small sizes, one call in 512 above 128 KiB (glibc's default mmap threshold), with a
 * window of live blocks so frees hit other call sites' blocks. Several distinct call sites at
 * the bottom make the stacks vary the way a real program's do. Leaks nothing on purpose except
 * one block per thread, so a report has something to show. */
#include "bench.h"

#define WINDOW 1024

static size_t pick_size(uint64_t r) {
    if ((r & 511) == 0) return 128 * 1024 + (r >> 20) % (256 * 1024);
    return 16 + (r >> 9) % 240;
}

__attribute__((noinline)) static void *site_a(size_t n) { return malloc(n); }
__attribute__((noinline)) static void *site_b(size_t n) { return calloc(1, n); }
__attribute__((noinline)) static void *site_c(void *p, size_t n) { return realloc(p, n); }
__attribute__((noinline)) static void *site_d(size_t n) { return malloc(n); }

static void churn(struct bench_job *job) {
    void *live[WINDOW] = {0};
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)(job->index + 1);
    for (long i = 0; i < job->calls; i++) {
        uint64_t r = next_random(&seed);
        size_t slot = (r >> 32) % WINDOW;
        size_t n = pick_size(r);
        switch (r % 4) {
        case 0: free(live[slot]); live[slot] = site_a(n); break;
        case 1: free(live[slot]); live[slot] = site_b(n); break;
        case 2: live[slot] = site_c(live[slot], n); break;
        default: free(live[slot]); live[slot] = site_d(n); break;
        }
        if (live[slot]) job->checksum += ((unsigned char *)live[slot])[0];
    }
    for (int i = 0; i < WINDOW; i++) free(live[i]);
    bench_leak(job->index, 1);
}

__attribute__((noinline)) static void descend(struct bench_job *job, int level) {
    if (level <= 1) {
        churn(job);
        return;
    }
    descend(job, level - 1);
    __asm__ volatile("" ::: "memory"); /* keep the recursion from becoming a loop */
}

static void *run(void *arg) {
    struct bench_job *job = arg;
    descend(job, job->recursion);
    return NULL;
}

int main(int argc, char **argv) {
    return bench_main(argc, argv, "allocbench", 6, run);
}
