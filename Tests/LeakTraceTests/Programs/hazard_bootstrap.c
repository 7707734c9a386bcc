/* Hazard 1, the program: an early constructor allocates before main, and main allocates.
 * Sizes are unique so the test can find each allocation in the trace:
 *   2222 early constructor (kept), 2223 early constructor (freed), 3333 main (kept). */
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *early_kept;

__attribute__((noinline)) static void *early_allocate(size_t size) { return malloc(size); }

__attribute__((constructor(101))) static void early_init(void) {
    early_kept = early_allocate(2222);
    free(early_allocate(2223));
    void *frames[16];
    backtrace(frames, 16);
}

__attribute__((noinline)) static void *main_allocate(size_t size) { return malloc(size); }

int main(void) {
    void *kept = main_allocate(3333);
    char *copy = strdup("bootstrap");
    printf("main: early=%d kept=%d copy=%s\n", early_kept != NULL, kept != NULL, copy);
    free(copy);
    return 0;
}
