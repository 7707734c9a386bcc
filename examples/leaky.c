/* The example that Scripts/demo.sh traces: a small program that leaks in each of the ways
 * leakreport tells apart. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct session {
    char *name;
    char *buffer;
};

/* Leaks on the brk heap: a session whose name is never freed. */
static struct session *open_session(const char *name) {
    struct session *s = malloc(sizeof *s);
    s->name = strdup(name);
    s->buffer = malloc(512);
    return s;
}

static void close_session(struct session *s) {
    free(s->buffer);
    free(s); /* forgot s->name */
}

/* Leaks through glibc's mmap threshold: a large buffer never freed. */
static char *load_image(void) {
    char *image = malloc(1 << 20);
    memset(image, 0x7f, 1 << 20);
    return image;
}

/* Leaks in a thread arena. */
static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 3; i++) {
        char *scratch = malloc(4096);
        scratch[0] = 1;
        if (i != 2) free(scratch);
    }
    return NULL;
}

/* Leaks a direct mapping. */
static void *map_cache(void) {
    return mmap(NULL, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void) {
    for (int i = 0; i < 5; i++) close_session(open_session("guest"));
    char *image = load_image();
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    void *cache = map_cache();
    printf("leaky: image %p, cache %p\n", (void *)image, cache);
    return 0;
}
