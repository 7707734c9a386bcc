/* Hazard 2, the program: 8 threads allocate blocks small and large (large ones make the
 * allocator map and unmap while it holds its lock) and free them all. Each thread keeps a
 * few blocks alive across iterations so frees are not always of the newest block.
 * Every thread leaks exactly one block of 7777 bytes at the end.
 * With argv[1] (a library path), one more thread loops dlopen/dlclose of it while the others
 * allocate: the loader then holds its locks and allocates while allocator threads map under
 * the allocator's lock, the pattern that deadlocks a hook which unwinds (and so walks the
 * loader's list) from inside the allocator's mmap call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define ITERATIONS 20000

static void *leaked[THREADS];
static atomic_int workers_done;
static const char *library;

static int visit_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info;
    (void)size;
    ++*(long *)data;
    return 0;
}

static void *load_loop(void *arg) {
    (void)arg;
    long rounds = 0;
    while (atomic_load(&workers_done) < THREADS || rounds < 100) {
        void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (!handle) return (void *)1;
        long objects = 0;
        dl_iterate_phdr(visit_object, &objects);
        if (dlclose(handle) != 0 || objects < 3) return (void *)1;
        rounds++;
    }
    return NULL;
}

static void *worker(void *arg) {
    long id = (long)arg;
    void *ring[16] = {0};
    unsigned seed = (unsigned)id * 2654435761u;
    for (long i = 0; i < ITERATIONS; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = (i % 97 == 0) ? 100000 + (seed % 50000) : 8 + (seed % 3000);
        void *p = (i % 5 == 0) ? calloc(1, size) : malloc(size);
        if (!p) return (void *)1;
        memset(p, (int)id, size < 64 ? size : 64);
        if (i % 7 == 0) p = realloc(p, size + 500);
        int slot = (int)(seed >> 8) % 16;
        free(ring[slot]);
        ring[slot] = p;
    }
    for (int k = 0; k < 16; k++) free(ring[k]);
    leaked[id] = malloc(7777);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[THREADS], loader;
    library = argc > 1 ? argv[1] : NULL;
    if (library) pthread_create(&loader, NULL, load_loop, NULL);
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    int failed = 0;
    if (library) {
        void *r;
        pthread_join(loader, &r);
        failed += r != NULL;
    }
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        failed += r != NULL;
    }
    int kept = 0;
    for (int i = 0; i < THREADS; i++) kept += leaked[i] != NULL;
    printf("threads=%d loader=%d failed=%d kept=%d\n", THREADS, library != NULL, failed, kept);
    return failed != 0;
}
