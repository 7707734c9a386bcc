/* Hazard 3, loader lock under load. One thread loops dlopen/dlclose of a library whose
 * constructor allocates (argv[1] is its path; argv[2] the iteration count), seven threads
 * allocate and free, and one more walks dl_iterate_phdr with a callback that mallocs (4646 bytes) while
 * the loader's lock is held. On its first iteration the loading thread has the library leak one
 * block of 6161 bytes before closing it. Output is deterministic. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ALLOCATORS 7

static atomic_int stop;
static const char *library;
static long iterations;
static void *leaked;

static void *loader(void *arg) {
    (void)arg;
    for (long i = 0; i < iterations; i++) {
        void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return (void *)1;
        }
        if (i == 0) {
            void *(*leak)(unsigned) = (void *(*)(unsigned))dlsym(handle, "loader_plugin_leak");
            if (!leak) return (void *)1;
            leaked = leak(6161);
        }
        if (dlclose(handle) != 0) return (void *)1;
    }
    atomic_store(&stop, 1);
    return NULL;
}

static void *allocator(void *arg) {
    long id = (long)arg;
    void *ring[8] = {0};
    long n = 0;
    while (!atomic_load(&stop)) {
        int slot = (int)(n % 8);
        free(ring[slot]);
        ring[slot] = malloc(32 + (size_t)((n * 7 + id) % 512));
        /* Keep allocating all along, at a pace that keeps the trace small. */
        if (++n % 64 == 0) usleep(200);
    }
    for (int k = 0; k < 8; k++) free(ring[k]);
    return NULL;
}

static int count_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)info;
    (void)size;
    /* Allocating while the loader's lock is held: the tracer must not take that lock again
     * from a hook, or wait for a thread that needs it. */
    void *p = malloc(4646);
    free(p);
    ++*(long *)data;
    return 0;
}

static void *walker(void *arg) {
    (void)arg;
    long walks = 0;
    while (!atomic_load(&stop)) {
        long objects = 0;
        dl_iterate_phdr(count_object, &objects);
        if (objects < 3) return (void *)1;
        walks++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    library = argv[1];
    iterations = atol(argv[2]);
    pthread_t load, walk, alloc[ALLOCATORS];
    for (long i = 0; i < ALLOCATORS; i++) pthread_create(&alloc[i], NULL, allocator, (void *)i);
    pthread_create(&walk, NULL, walker, NULL);
    pthread_create(&load, NULL, loader, NULL);
    void *result;
    int failed = 0;
    pthread_join(load, &result);
    failed += result != NULL;
    pthread_join(walk, &result);
    failed += result != NULL;
    for (int i = 0; i < ALLOCATORS; i++) pthread_join(alloc[i], NULL);
    printf("iterations=%ld failed=%d leaked=%d\n", iterations, failed, leaked != NULL);
    return failed;
}
