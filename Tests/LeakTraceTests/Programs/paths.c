/* glibc's allocation paths: the brk heap, an mmapped chunk above M_MMAP_THRESHOLD, glibc
 * raising the threshold after an mmapped chunk is freed, mallopt setting it, and a thread
 * arena. Blocks are kept live so the test can read their paths from the trace. */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *arena_block;

static void *thread_main(void *arg) {
    (void)arg;
    arena_block = malloc(777);
    return NULL;
}

int main(void) {
    void *small = malloc(1000);                  /* heap */
    void *big = malloc(200000);                  /* mmapped: above the 128 KiB default */
    free(big);                                   /* glibc raises the threshold to ~200 KiB */
    void *big_again = malloc(200000);            /* now served from the heap */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);        /* fixed threshold, dynamic raising off */
    void *medium = malloc(160000);               /* mmapped: above 64 KiB and more than the top holds */
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    printf("%p %p %p %p\n", small, big_again, medium, arena_block);
    return 0;
}
