/* The worst case for folding, for Scripts/bench.sh: every block lives just longer than the
 * tracer's fold window, so nothing folds and the writer pays for holding every event back.
 *
 *   foldworst LIVE ITERATIONS
 *
 * A queue of LIVE blocks: each iteration frees the oldest and allocates a new one, so a block
 * lives LIVE iterations. The window holds 16,384 events: once the queue is full an iteration
 * holds two (a free and an allocation), so blocks would have to live fewer than 8,192
 * iterations to fold; while the queue fills it holds one (free(NULL) is not traced), so with
 * LIVE = 17000 not even the first blocks fold. Sizes are random among 32 classes of 16 to 512
 * bytes (as a program's are, so that the trace does not compress to a repeating pattern).
 * Leaks nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long live = argc > 1 ? atol(argv[1]) : 17000;
    long iterations = argc > 2 ? atol(argv[2]) : 2000000;
    if (live < 1 || iterations < 0) return 2;
    void **queue = calloc((size_t)live, sizeof *queue);
    if (!queue) return 1;
    uint64_t checksum = 0, seed = 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < iterations; i++) {
        long slot = i % live;
        free(queue[slot]);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        unsigned char *p = malloc(16 + (size_t)(seed % 32) * 16);
        if (!p) return 1;
        p[0] = (unsigned char)i;
        checksum += p[0];
        queue[slot] = p;
    }
    for (long i = 0; i < live; i++) free(queue[i]);
    free(queue);
    printf("%llu\n", (unsigned long long)checksum);
    return 0;
}
