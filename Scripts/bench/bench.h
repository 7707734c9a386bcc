/* What the bench workloads share: the random source, the size classes, the leaked block each
 * thread leaves behind, argument reading and the thread runner. Header-only so that each
 * workload stays one `cc -O2 -g -pthread` command. */
#ifndef LEAKTRACE_BENCH_H
#define LEAKTRACE_BENCH_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MAX_THREADS 64
#define NOINLINE __attribute__((noinline, noclone))
/* An empty asm statement after a call keeps it from becoming a tail call; the tag makes each
 * copy distinct, so identical code folding cannot merge functions of the same shape. */
#define BARRIER(tag) __asm__ volatile("# " tag ::: "memory")

static inline uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Sizes come from a few dozen classes (as a program's structs and buffers do), not from every
 * byte count: heaptrack 1.4's interpreter interns (size, stack) pairs in a hash set whose hash
 * of small sizes and stack indices clusters, and with every byte count from 8 to 1024 under
 * 1,024 stacks it grows that set until it runs out of memory (after ~40 s, the run lost). */
static const unsigned short bench_small_sizes[32] = {
    8, 12, 16, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 144, 160,
    176, 192, 224, 256, 288, 320, 384, 448, 512, 576, 640, 768, 832, 896, 960, 1024};

/* The one block each thread leaks, stored where the compiler must assume it is read: a block
 * only written and never freed can be optimised away, malloc and all, and the report would
 * have nothing to show. */
static void *volatile bench_leaked[BENCH_MAX_THREADS];

static inline void bench_leak(int index, int fill) {
    void *leak = malloc(4242);
    if (leak) memset(leak, fill, 4242);
    bench_leaked[index] = leak;
}

/* Reads the `count` integer arguments named in `usage`; on a wrong count prints the usage line
 * and returns 0. */
static inline int bench_read_args(int argc, char **argv, int count, long *values, const char *usage) {
    if (argc != count + 1) {
        fprintf(stderr, "usage: %s\n", usage);
        return 0;
    }
    for (int i = 0; i < count; i++) values[i] = atol(argv[i + 1]);
    return 1;
}

/* Runs `run` on `threads` threads, the t-th with args[t], and waits for all of them. Returns
 * 0, or 1 if a thread could not be started. */
static inline int bench_run_threads(int threads, void *(*run)(void *), void **args) {
    pthread_t tids[BENCH_MAX_THREADS];
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, run, args[t]) != 0) return 1;
    for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
    return 0;
}

/* One thread's share of a THREADS DEPTH CALLS_PER_THREAD workload. */
struct bench_job {
    int index;
    int recursion;      /* frames of plain recursion between the thread's start and the work */
    long calls;
    uint64_t checksum;  /* printed by main, so the work cannot be optimised away */
};

/* main() of a THREADS DEPTH CALLS_PER_THREAD workload. DEPTH counts the frames from an
 * allocation site up to clone(); `fixed_frames` of them are the workload's own (clone,
 * start_thread, run, the work's frames), the rest plain recursion. Returns the exit status. */
static inline int bench_main(int argc, char **argv, const char *name, int fixed_frames,
                             void *(*run)(void *)) {
    char usage[128];
    snprintf(usage, sizeof usage, "%s THREADS DEPTH CALLS_PER_THREAD", name);
    long arg[3];
    if (!bench_read_args(argc, argv, 3, arg, usage)) return 2;
    if (arg[0] < 1 || arg[0] > BENCH_MAX_THREADS || arg[1] < fixed_frames || arg[1] > 1000 || arg[2] < 1) {
        fprintf(stderr, "%s: THREADS 1-%d, DEPTH %d-1000, CALLS_PER_THREAD >= 1\n", name,
                BENCH_MAX_THREADS, fixed_frames);
        return 2;
    }
    int threads = (int)arg[0];
    struct bench_job jobs[BENCH_MAX_THREADS];
    void *args[BENCH_MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct bench_job){t, (int)arg[1] - fixed_frames, arg[2], 0};
        args[t] = &jobs[t];
    }
    if (bench_run_threads(threads, run, args) != 0) return 1;
    uint64_t sum = 0;
    for (int t = 0; t < threads; t++) sum += jobs[t].checksum;
    printf("%llu\n", (unsigned long long)(sum & 0xffff));
    return 0;
}

#endif
