/* Leaks of every allocator path, for the analyzer's end-to-end tests. The tests find the
 * expected line numbers from the "@name" markers in this file. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An allocation wrapper of the kind the default skip list knows. */
__attribute__((noinline)) void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) abort();
    return p;
}

__attribute__((noinline)) void make_list(void) {
    for (int i = 0; i < 10; i++) xmalloc(100); /* @list */
}

__attribute__((noinline)) char *copy_name(const char *s) {
    return strdup(s); /* @name */
}

/* Twenty 10000-byte heap blocks; all but the last are freed, so the last pins the rest. */
__attribute__((noinline)) void *pin_heap(void) {
    void *blocks[20];
    for (int i = 0; i < 20; i++) blocks[i] = malloc(10000); /* @pin */
    for (int i = 0; i < 19; i++) free(blocks[i]);
    return blocks[19];
}

__attribute__((noinline)) void *big_after_raise(void) {
    return malloc(200000); /* @big */
}

__attribute__((noinline)) void *after_mallopt(void) {
    return malloc(100000); /* @mmapped */
}

__attribute__((noinline)) void *grown(void) {
    void *p = malloc(10);
    return realloc(p, 3000); /* @realloc */
}

static void *thread_main(void *arg) {
    (void)arg;
    return malloc(1000); /* @thread */
}

int main(void) {
    make_list();
    copy_name("leaktrace");
    free(malloc(50));
    pin_heap();
    free(malloc(300000)); /* an mmapped chunk: freeing it raises the threshold to 303104 */
    big_after_raise();
    grown();
    mallopt(M_MMAP_THRESHOLD, 65536);
    after_mallopt();
    pthread_t thread;
    void *result;
    pthread_create(&thread, NULL, thread_main, NULL);
    pthread_join(thread, &result);
    sbrk(8192); /* @sbrk */
    return 0;
}
