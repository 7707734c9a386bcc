/* Calls every hooked allocation function once from its own function, so a test can check the
 * function, size, path and call site of each record. Frees everything except the blocks named
 * "kept_*", which the test expects to stay live. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *call_malloc(void) { return malloc(101); }
__attribute__((noinline)) void *call_calloc(void) { return calloc(7, 11); }
__attribute__((noinline)) void *call_realloc_grow(void *p) { return realloc(p, 5000); }
__attribute__((noinline)) void *call_reallocarray(void *p) { return reallocarray(p, 10, 30); }
__attribute__((noinline)) void *call_posix_memalign(void) {
    void *p = NULL;
    return posix_memalign(&p, 64, 300) == 0 ? p : NULL;
}
__attribute__((noinline)) void *call_aligned_alloc(void) { return aligned_alloc(128, 256); }
__attribute__((noinline)) void *call_memalign(void) { return memalign(32, 96); }
__attribute__((noinline)) void *call_valloc(void) { return valloc(1000); }
__attribute__((noinline)) void *call_pvalloc(void) { return pvalloc(2000); }
__attribute__((noinline)) void *kept_malloc(void) { return malloc(4242); }

int main(void) {
    void *a = call_malloc();
    void *b = call_calloc();
    a = call_realloc_grow(a);
    b = call_reallocarray(b);
    void *c = call_posix_memalign();
    void *d = call_aligned_alloc();
    void *e = call_memalign();
    void *f = call_valloc();
    void *g = call_pvalloc();
    void *kept = kept_malloc();
    memset(kept, 0, 4242);
    void *freed_by_realloc = malloc(64);
    void *none = realloc(freed_by_realloc, 0); /* glibc frees and returns NULL */
    free(NULL);
    free(a); free(b); free(c); free(d); free(e); free(f); free(g);
    printf("done %d\n", none == NULL);
    return 7;
}
