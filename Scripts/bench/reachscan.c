/* The exit scan's workload (bench.sh, "Reachability"): MB megabytes of live blocks of SIZE
 * bytes, all reachable from one global array, then exit. SHAPE says what the blocks hold:
 *   dense  every word points into a random block (half to its start, half inside it): every
 *          word scanned is a pointer to look up, in no useful order (the worst case)
 *   list   each block points to the next and holds zeros otherwise (few pointers per byte)
 * Usage: reachscan MB SIZE dense|list */
#include "bench.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: reachscan MB SIZE dense|list\n");
        return 2;
    }
    uint64_t mb = strtoull(argv[1], NULL, 10), size = strtoull(argv[2], NULL, 10);
    int dense = strcmp(argv[3], "dense") == 0;
    if (size < 16 || size % 8) {
        fprintf(stderr, "reachscan: SIZE must be a multiple of 8, at least 16\n");
        return 2;
    }
    uint64_t count = (mb << 20) / size;
    static void **volatile all;
    all = malloc(count * sizeof *all);
    for (uint64_t i = 0; i < count; i++) all[i] = calloc(1, size);
    uint64_t state = 88172645463325252ull;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t *words = all[i];
        if (!dense) {
            words[0] = (uint64_t)(uintptr_t)all[(i + 1) % count];
            continue;
        }
        for (uint64_t w = 0; w < size / 8; w++) {
            uint64_t r = next_random(&state);
            words[w] = (uint64_t)(uintptr_t)all[r % count] + ((r >> 40) & 1 ? ((r >> 41) % (size / 8)) * 8 : 0);
        }
    }
    printf("%llu blocks of %llu bytes\n", (unsigned long long)count, (unsigned long long)size);
    return 0;
}
