/* Makes a long trace whose memory should not matter: argv[1] allocation events (mallocs and
 * frees), with argv[2] blocks live at any time (default 10,000) from eight call sites, and
 * argv[3] blocks (default 1,000) left allocated at exit. Used by Scripts/hazards.sh to measure
 * the reader's memory on a 50-million-event trace. Prints the counts it made. */
#include <stdio.h>
#include <stdlib.h>

#define SITE(n) \
    __attribute__((noinline)) static void *site##n(size_t size) { return malloc(size + n); }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)

static void *(*const sites[8])(size_t) = {site0, site1, site2, site3, site4, site5, site6, site7};

int main(int argc, char **argv) {
    long events = argc > 1 ? atol(argv[1]) : 50000000;
    long live = argc > 2 ? atol(argv[2]) : 10000;
    long leaks = argc > 3 ? atol(argv[3]) : 1000;
    if (live < 1 || events < 2 * live) return 2;
    void **ring = calloc((size_t)live, sizeof *ring);
    if (!ring) return 1;
    unsigned seed = 12345;
    long mallocs = 0, frees = 0;
    for (long slot = 0; mallocs + frees < events; slot = (slot + 1) % live) {
        seed = seed * 1103515245u + 12345u;
        if (ring[slot]) {
            free(ring[slot]);
            frees++;
        }
        ring[slot] = sites[seed >> 29](16 + (seed >> 8) % 2000);
        mallocs++;
    }
    for (long k = 0; k < live; k++)
        if (k >= leaks && ring[k]) {
            free(ring[k]);
            frees++;
        }
    free(ring);
    printf("events=%ld mallocs=%ld frees=%ld left=%ld\n", mallocs + frees, mallocs, frees, mallocs - frees);
    return 0;
}
