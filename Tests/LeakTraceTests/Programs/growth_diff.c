/* Leaks in proportion to its argument N, so that two runs differ by a known amount:
 *   per_item:   N blocks of 100 bytes;
 *   per_pair:   2N blocks of 50 bytes;
 *   only_large: one 4000-byte block when N >= 10 (appears in a larger run);
 *   only_small: one 3000-byte block when N < 5 (vanishes from a larger run);
 *   scratch:    N blocks of 64 bytes, all freed (never leaked). */
#include <stdlib.h>

static void *keep[1000];
static int kept;

__attribute__((noinline)) static void per_item(void) {
    keep[kept++] = malloc(100); /* @item */
}

__attribute__((noinline)) static void per_pair(void) {
    keep[kept++] = malloc(50); /* @pair */
}

__attribute__((noinline)) static void only_large(void) {
    keep[kept++] = malloc(4000); /* @large */
}

__attribute__((noinline)) static void only_small(void) {
    keep[kept++] = malloc(3000); /* @small */
}

__attribute__((noinline)) static void scratch(void) {
    free(malloc(64));
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 0 || n > 300) return 2;
    for (int i = 0; i < n; i++) {
        per_item();
        per_pair();
        per_pair();
        scratch();
    }
    if (n >= 10) only_large();
    if (n < 5) only_small();
    return 0;
}
